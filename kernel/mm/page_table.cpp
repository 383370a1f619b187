#include "mm/page_table.hpp"

namespace vlibos::mm {

const char* describe(PageTableError error)
{
    switch (error) {
    case PageTableError::Empty:
        return "the mapping has size zero";
    case PageTableError::Unaligned:
        return "the virtual address, physical address or size is not 4 KiB aligned";
    case PageTableError::NonCanonical:
        return "the virtual range is not canonical (bits 63:47 differ or it crosses the address-space hole)";
    case PageTableError::PhysicalTooHigh:
        return "the physical range extends beyond the 52-bit physical address limit";
    case PageTableError::AlreadyMapped:
        return "part of the virtual range is already mapped";
    case PageTableError::OutOfMemory:
        return "no memory is left for another page table";
    case PageTableError::NotMapped:
        return "the virtual address is not mapped";
    }
    return "unknown page table error";
}

} // namespace vlibos::mm
