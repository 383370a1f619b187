/* The VM test guest (tests/guests/vm_test_guest.S), built as a flat binary and embedded here so
   the vlibos.vmtest harness can load it into each test VM. VLIBOS_TEST_GUEST_BIN is its path. */
    .section .rodata
    .balign 16
    .global vm_test_guest_start, vm_test_guest_end
vm_test_guest_start:
#ifdef VLIBOS_TEST_GUEST_BIN
    .incbin VLIBOS_TEST_GUEST_BIN
#endif
vm_test_guest_end:
