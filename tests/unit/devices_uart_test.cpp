#include "vmm/devices/virtual_uart.hpp"

#include <catch2/catch.hpp>

#include <stdint.h>
#include <string>
#include <vector>

#include "test_random.hpp"

using namespace vlibos::vmm::devices;
using U = VirtualUart;

namespace {

// Linux's names for the registers (include/uapi/linux/serial_reg.h), as its 8250 driver uses them.
constexpr uint32_t UART_RX = 0, UART_TX = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1, UART_IIR = 2,
                   UART_FCR = 2, UART_EFR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6,
                   UART_SCR = 7;
constexpr uint8_t UART_LCR_CONF_MODE_A = 0x80, UART_LCR_CONF_MODE_B = 0xbf, UART_LCR_WLEN8 = 0x03;
constexpr uint8_t UART_FCR_ENABLE_FIFO = 0x01, UART_FCR_CLEAR_RCVR = 0x02, UART_FCR_CLEAR_XMIT = 0x04,
                  UART_FCR7_64BYTE = 0x20, UART_FCR_R_TRIG_10 = 0x80;
constexpr uint8_t UART_IIR_NO_INT = 0x01;
constexpr uint8_t UART_IER_UUE = 0x40;

// The guest and the I/O APIC pin behind the UART. Every access goes through here, and every edge
// the model reports is checked against irq_line(): the level the pin was told always matches.
struct Rig {
    U uart;
    bool pin = false;
    uint64_t raises = 0;

    void track(IrqEdge e)
    {
        if (e == IrqEdge::Raised) {
            REQUIRE(!pin);
            pin = true;
            ++raises;
        } else if (e == IrqEdge::Lowered) {
            REQUIRE(pin);
            pin = false;
        }
        REQUIRE(pin == uart.irq_line());
    }
    uint8_t in(uint32_t offset)
    {
        auto r = uart.read(offset, 1);
        REQUIRE(r.ok());
        REQUIRE(r.value().value <= 0xff);
        track(r.value().irq);
        return static_cast<uint8_t>(r.value().value);
    }
    IrqEdge out(uint32_t offset, uint8_t value)
    {
        auto r = uart.write(offset, 1, value);
        REQUIRE(r.ok());
        track(r.value());
        return r.value();
    }
    IrqEdge rx(uint8_t byte)
    {
        IrqEdge e = uart.receive(byte);
        track(e);
        return e;
    }
    IrqEdge idle()
    {
        IrqEdge e = uart.line_idle();
        track(e);
        return e;
    }
    std::string drain(size_t max = 1u << 20)
    {
        std::vector<uint8_t> buf(max);
        UartOutput o = uart.take_output(buf.data(), max);
        track(o.irq);
        return std::string(buf.begin(), buf.begin() + static_cast<long>(o.count));
    }
};

// serial8250_clear_fifos()
void linux_clear_fifos(Rig& g)
{
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    g.out(UART_FCR, 0);
}

// size_fifo(): counts how many of 256 looped-back bytes the receive FIFO keeps.
int linux_size_fifo(Rig& g)
{
    uint8_t old_lcr = g.in(UART_LCR);
    g.out(UART_LCR, 0);
    uint8_t old_fcr = g.in(UART_FCR);  // really IIR: FCR is write-only
    uint8_t old_mcr = g.in(UART_MCR);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    g.out(UART_MCR, U::kMcrLoop);
    g.out(UART_LCR, UART_LCR_CONF_MODE_A);
    uint16_t old_dl = static_cast<uint16_t>(g.in(UART_DLL) | (g.in(UART_DLM) << 8));
    g.out(UART_DLL, 1);
    g.out(UART_DLM, 0);
    g.out(UART_LCR, UART_LCR_WLEN8);
    for (int count = 0; count < 256; ++count)
        g.out(UART_TX, static_cast<uint8_t>(count));
    int count = 0;
    for (; (g.in(UART_LSR) & U::kLsrDr) && count < 256; ++count)
        g.in(UART_RX);
    g.out(UART_FCR, old_fcr);
    g.out(UART_MCR, old_mcr);
    g.out(UART_LCR, UART_LCR_CONF_MODE_A);
    g.out(UART_DLL, static_cast<uint8_t>(old_dl));
    g.out(UART_DLM, static_cast<uint8_t>(old_dl >> 8));
    g.out(UART_LCR, old_lcr);
    return count;
}

// autoconfig_16550a(): tells the 16550A from its many relatives.
std::string linux_autoconfig_16550a(Rig& g)
{
    // EFR behind DLAB (ST16C650V1): offset 2 reads IIR here, which is never 0 with FIFOs on.
    g.out(UART_LCR, UART_LCR_CONF_MODE_A);
    if (g.in(UART_EFR) == 0)
        return "16650";
    // EFR behind LCR=0xBF (ST16C650V2, TI16C752, ...).
    g.out(UART_LCR, UART_LCR_CONF_MODE_B);
    if (g.in(UART_EFR) == 0)
        return "EFRv2";
    // National SuperIO: bank 2 EXCR1 (offset 2 under LCR=0xE0) mirrors MCR.LOOP.
    g.out(UART_LCR, 0);
    uint8_t status1 = g.in(UART_MCR);
    g.out(UART_LCR, 0xe0);
    uint8_t status2 = g.in(0x02);
    if (!((status2 ^ status1) & U::kMcrLoop)) {
        g.out(UART_LCR, 0);
        g.out(UART_MCR, static_cast<uint8_t>(status1 ^ U::kMcrLoop));
        g.out(UART_LCR, 0xe0);
        status2 = g.in(0x02);
        g.out(UART_LCR, 0);
        g.out(UART_MCR, status1);
        if ((status2 ^ status1) & U::kMcrLoop)
            return "NS16550A";
    }
    // TI16750: IIR bit 5 reports the 64-byte FIFO, set only with DLAB.
    g.out(UART_LCR, 0);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
    int s1 = g.in(UART_IIR) >> 5;
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    g.out(UART_LCR, UART_LCR_CONF_MODE_A);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
    int s2 = g.in(UART_IIR) >> 5;
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    g.out(UART_LCR, 0);
    CHECK(s1 == 6);
    CHECK(s2 == 6);
    if (s1 == 6 && s2 == 7)
        return "16750";
    // XScale: IER bit 6 (UUE) writable.
    uint8_t iersave = g.in(UART_IER);
    g.out(UART_IER, static_cast<uint8_t>(iersave & ~UART_IER_UUE));
    if (!(g.in(UART_IER) & UART_IER_UUE)) {
        g.out(UART_IER, static_cast<uint8_t>(iersave | UART_IER_UUE));
        if (g.in(UART_IER) & UART_IER_UUE) {
            g.out(UART_IER, iersave);
            return "XScale";
        }
    }
    g.out(UART_IER, iersave);
    // U6 16550A: a 64-byte FIFO.
    if (linux_size_fifo(g) == 64)
        return "U6_16550A";
    return "16550A";
}

// serial8250 autoconfig(), with UPF_BOOT_AUTOCONF and without UPF_SKIP_TEST (the loopback check).
std::string linux_autoconfig(Rig& g)
{
    // IER scratch test.
    uint8_t scratch = g.in(UART_IER);
    g.out(UART_IER, 0);
    uint8_t scratch2 = g.in(UART_IER) & 0x0f;
    g.out(UART_IER, 0x0f);
    uint8_t scratch3 = g.in(UART_IER) & 0x0f;
    g.out(UART_IER, scratch);
    if (scratch2 != 0 || scratch3 != 0x0f)
        return "none (IER test)";

    uint8_t save_mcr = g.in(UART_MCR);
    uint8_t save_lcr = g.in(UART_LCR);
    // Loopback test: RTS and OUT2 come back as CTS and DCD.
    g.out(UART_MCR, U::kMcrLoop | 0x0a);
    uint8_t status1 = g.in(UART_MSR) & 0xf0;
    g.out(UART_MCR, save_mcr);
    if (status1 != 0x90)
        return "none (loopback test)";

    g.out(UART_LCR, UART_LCR_CONF_MODE_B);
    g.out(UART_EFR, 0);
    g.out(UART_LCR, 0);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    std::string type;
    switch (g.in(UART_IIR) >> 6) {
    case 0: {
        // autoconfig_8250(): the scratch register tells a 16450 from an 8250.
        uint8_t s = g.in(UART_SCR);
        g.out(UART_SCR, 0xa5);
        uint8_t a = g.in(UART_SCR);
        g.out(UART_SCR, 0x5a);
        uint8_t b = g.in(UART_SCR);
        g.out(UART_SCR, s);
        type = (a == 0xa5 && b == 0x5a) ? "16450" : "8250";
        break;
    }
    case 1: type = "unknown"; break;
    case 2: type = "16550"; break;
    default: type = linux_autoconfig_16550a(g); break;
    }
    g.out(UART_LCR, save_lcr);
    g.out(UART_MCR, save_mcr);
    linux_clear_fifos(g);
    g.in(UART_RX);
    g.out(UART_IER, 0);
    return type;
}

// autoconfig_irq(): true if the IRQ line rose after the test byte was written, with no further
// access (probe_irq_off() looks at the interrupt controller only).
bool linux_autoconfig_irq(Rig& g)
{
    uint8_t save_mcr = g.in(UART_MCR);
    uint8_t save_ier = g.in(UART_IER);
    g.out(UART_MCR, U::kMcrOut1 | U::kMcrOut2);
    g.out(UART_MCR, 0);
    g.out(UART_MCR, U::kMcrDtr | U::kMcrRts | U::kMcrOut2);
    g.out(UART_IER, 0x0f);
    g.in(UART_LSR);
    g.in(UART_RX);
    g.in(UART_IIR);
    g.in(UART_MSR);
    bool fired = g.out(UART_TX, 0xff) == IrqEdge::Raised;
    g.out(UART_MCR, save_mcr);
    g.out(UART_IER, save_ier);
    return fired;
}

struct StartupBugs {
    bool thre = false;  // UART_BUG_THRE: THRE not re-asserted, Linux falls back to a timer
    bool txen = false;  // UART_BUG_TXEN: no THRE interrupt on enabling it
};

// The interrupt tests of serial8250_do_startup(), after setup_irq().
StartupBugs linux_startup(Rig& g)
{
    StartupBugs bugs;
    linux_clear_fifos(g);
    g.in(UART_LSR);
    g.in(UART_RX);
    g.in(UART_IIR);
    g.in(UART_MSR);
    REQUIRE(g.in(UART_LSR) != 0xff);  // "LSR safety check engaged"

    // THRE re-assertion test.
    for (int i = 0; i < 10000 && !(g.in(UART_LSR) & U::kLsrThre); ++i) {
    }
    g.out(UART_IER, U::kIerThri);
    uint8_t iir1 = g.in(UART_IIR);
    g.out(UART_IER, 0);
    g.out(UART_IER, U::kIerThri);
    uint8_t iir = g.in(UART_IIR);
    g.out(UART_IER, 0);
    bugs.thre = !(iir1 & UART_IIR_NO_INT) && (iir & UART_IIR_NO_INT);

    g.out(UART_LCR, UART_LCR_WLEN8);
    g.out(UART_MCR, U::kMcrOut2);  // "Most PC uarts need OUT2 raised to enable interrupts."

    // TX enable test.
    g.out(UART_IER, U::kIerThri);
    uint8_t lsr = g.in(UART_LSR);
    iir = g.in(UART_IIR);
    g.out(UART_IER, 0);
    bugs.txen = (lsr & U::kLsrTemt) && (iir & UART_IIR_NO_INT);

    g.in(UART_LSR);
    g.in(UART_RX);
    g.in(UART_IIR);
    g.in(UART_MSR);
    g.out(UART_IER, U::kIerRlsi | U::kIerRdi);
    return bugs;
}

// serial8250_do_set_termios() for 115200 8N1 on a 16550A.
void linux_set_termios(Rig& g)
{
    g.out(UART_LCR, UART_LCR_WLEN8 | UART_LCR_CONF_MODE_A);
    g.out(UART_DLL, 1);
    g.out(UART_DLM, 0);
    g.out(UART_LCR, UART_LCR_WLEN8);
    g.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_R_TRIG_10);
}

// serial8250_handle_irq() with serial8250_tx_chars()/rx_chars(): one pass over IIR/LSR. Returns
// false when IIR said nothing is pending.
bool linux_handle_irq(Rig& g, std::string& pending_tx, std::string& received, bool& tx_running)
{
    uint8_t iir = g.in(UART_IIR);
    if (iir & UART_IIR_NO_INT)
        return false;
    uint8_t lsr = g.in(UART_LSR);
    while (lsr & U::kLsrDr) {
        received.push_back(static_cast<char>(g.in(UART_RX)));
        lsr = g.in(UART_LSR);
    }
    if ((lsr & U::kLsrThre) && tx_running) {
        // tx_loadsz = 16 bytes per THRE, without looking at LSR in between.
        for (int n = 0; n < 16 && !pending_tx.empty(); ++n) {
            g.out(UART_TX, static_cast<uint8_t>(pending_tx.front()));
            pending_tx.erase(0, 1);
        }
        if (pending_tx.empty()) {
            tx_running = false;
            g.out(UART_IER, static_cast<uint8_t>(g.uart.ier() & ~U::kIerThri));  // __stop_tx()
        }
    }
    return true;
}

// A Linux-configured port: probed, started, 115200 8N1 with FIFOs, trigger 8, RX interrupts on.
void linux_bring_up(Rig& g)
{
    REQUIRE(linux_autoconfig(g) == "16550A");
    linux_startup(g);
    linux_set_termios(g);
}

} // namespace

TEST_CASE("uart: reset state and the register file", "[devices][uart]")
{
    Rig g;
    CHECK(g.in(U::kIer) == 0);
    CHECK(g.in(U::kIirFcr) == 0x01);  // nothing pending, no FIFOs
    CHECK(g.in(U::kLcr) == 0);
    CHECK(g.in(U::kMcr) == 0);
    CHECK(g.in(U::kLsr) == 0x60);  // THRE, TEMT
    CHECK(g.in(U::kMsr) == 0xb0);  // CTS, DSR, DCD; no deltas
    CHECK(g.in(U::kScr) == 0);
    CHECK(g.in(U::kRbrThr) == 0);  // empty receiver
    CHECK_FALSE(g.uart.irq_line());

    g.out(U::kScr, 0xa5);
    CHECK(g.in(U::kScr) == 0xa5);
    g.out(U::kIer, 0xff);
    CHECK(g.in(U::kIer) == 0x0f);  // bits 7:4 read 0
    g.out(U::kIer, 0);
    g.out(U::kMcr, 0xff);
    CHECK(g.in(U::kMcr) == 0x1f);  // bits 7:5 read 0
    g.out(U::kMcr, 0);
    CHECK(g.in(U::kMsr) == (0xb0 | U::kMsrTeri));  // MCR 0xff was loopback with OUT1 (RI) on
    g.out(U::kLsr, 0x00);
    g.out(U::kMsr, 0x0f);
    CHECK(g.in(U::kLsr) == 0x60);
    CHECK(g.in(U::kMsr) == 0xb0);
    CHECK(g.uart.stats().ignored_writes == 2);

    // DLAB switches offsets 0 and 1 to the divisor latch; IER and the receiver are untouched.
    g.out(U::kIer, 0x05);
    g.out(U::kLcr, 0x83);
    CHECK(g.in(U::kLcr) == 0x83);
    g.out(U::kRbrThr, 0x34);
    g.out(U::kIer, 0x12);
    CHECK(g.in(U::kRbrThr) == 0x34);
    CHECK(g.in(U::kIer) == 0x12);
    CHECK(g.uart.divisor() == 0x1234);
    CHECK(g.uart.output_pending() == 0);  // the DLL write was not a transmission
    // IIR/FCR ignore DLAB.
    CHECK(g.in(U::kIirFcr) == 0x01);
    g.out(U::kIirFcr, 0x01);
    CHECK(g.in(U::kIirFcr) == 0xc1);
    g.out(U::kLcr, 0x03);
    CHECK(g.in(U::kIer) == 0x05);
    CHECK(g.uart.ier() == 0x05);

    // FCR is write-only; disabling the FIFOs leaves the trigger level as it was programmed.
    g.out(U::kIirFcr, 0xc1);
    CHECK(g.uart.rx_trigger() == 14);
    g.out(U::kIirFcr, 0x40);
    CHECK_FALSE(g.uart.fifo_enabled());
    CHECK(g.uart.rx_trigger() == 1);
    CHECK(g.in(U::kIirFcr) == 0x01);
    g.out(U::kIirFcr, 0x41);
    CHECK(g.uart.rx_trigger() == 4);
    CHECK(std::string(describe(UartError::BadSize)).find("size") != std::string::npos);
}

TEST_CASE("uart: Linux's 8250 autoconfig finds a 16550A and transmits nothing", "[devices][uart]")
{
    Rig g;
    CHECK(linux_autoconfig(g) == "16550A");
    // size_fifo() looped 256 bytes back: 16 were kept, the rest overran, none reached the host.
    CHECK(g.uart.stats().loopback_bytes == 256);
    CHECK(g.uart.stats().rx_overruns == 240);
    CHECK(g.uart.output_pending() == 0);
    CHECK(g.uart.stats().tx_bytes == 0);
    // Left as Linux restores it: FIFOs off, IER 0, MCR and LCR as found, divisor restored.
    CHECK_FALSE(g.uart.fifo_enabled());
    CHECK(g.uart.ier() == 0);
    CHECK(g.uart.mcr() == 0);
    CHECK(g.uart.lcr() == 0);
    CHECK(g.uart.divisor() == 1);
    CHECK(g.uart.rx_level() == 0);
    CHECK(g.pin == false);
    CHECK(g.raises == 0);

    SECTION("the scratch register holds what is written (autoconfig_8250's test)")
    {
        for (uint8_t v : {uint8_t{0xa5}, uint8_t{0x5a}, uint8_t{0x00}, uint8_t{0xff}}) {
            g.out(UART_SCR, v);
            CHECK(g.in(UART_SCR) == v);
        }
    }
    SECTION("FIFO detection: IIR bits 7:6 follow FCR bit 0")
    {
        g.out(UART_FCR, UART_FCR_ENABLE_FIFO);
        CHECK((g.in(UART_IIR) >> 6) == 3);
        g.out(UART_FCR, 0);
        CHECK((g.in(UART_IIR) >> 6) == 0);
    }
}

TEST_CASE("uart: the THRE interrupt tests of autoconfig_irq and serial8250_do_startup", "[devices][uart]")
{
    Rig g;
    REQUIRE(linux_autoconfig(g) == "16550A");
    CHECK(linux_autoconfig_irq(g));
    CHECK(g.uart.output_pending() == 1);  // the probe's 0xFF goes out, as on the chip
    g.drain();

    StartupBugs bugs = linux_startup(g);
    CHECK_FALSE(bugs.thre);
    CHECK_FALSE(bugs.txen);
    CHECK(g.uart.ier() == (U::kIerRlsi | U::kIerRdi));
    CHECK(g.uart.mcr() == U::kMcrOut2);
    CHECK_FALSE(g.pin);
}

TEST_CASE("uart: THRE interrupt raise and clear rules", "[devices][uart]")
{
    Rig g;
    g.out(U::kMcr, U::kMcrOut2);

    // Enabling ETBEI while THR is empty raises it.
    CHECK(g.out(U::kIer, U::kIerThri) == IrqEdge::Raised);
    CHECK(g.uart.iir() == 0x02);
    // Rewriting IER with ETBEI already set does not re-raise a cleared one.
    CHECK(g.in(U::kIirFcr) == 0x02);
    CHECK_FALSE(g.pin);
    CHECK(g.out(U::kIer, U::kIerThri) == IrqEdge::None);
    CHECK(g.in(U::kIirFcr) == 0x01);
    // Writing THR clears it; the transmitter empties at once and raises it again.
    CHECK(g.out(U::kRbrThr, 'a') == IrqEdge::Raised);
    CHECK(g.out(U::kRbrThr, 'b') == IrqEdge::None);  // cleared and re-raised within the write
    CHECK(g.pin);
    // LSR and MSR reads leave it alone.
    g.in(U::kLsr);
    g.in(U::kMsr);
    CHECK(g.pin);
    // Disabling ETBEI drops it; enabling it again with THR empty raises it again.
    CHECK(g.out(U::kIer, 0) == IrqEdge::Lowered);
    CHECK(g.out(U::kIer, U::kIerThri) == IrqEdge::Raised);

    // Reading IIR clears THRE only when THRE is what it reports.
    g.out(U::kIer, U::kIerThri | U::kIerRdi);
    g.rx('x');
    CHECK(g.in(U::kIirFcr) == 0x04);  // received data outranks THRE
    CHECK(g.in(U::kIirFcr) == 0x04);
    CHECK(g.in(U::kRbrThr) == 'x');
    CHECK(g.in(U::kIirFcr) == 0x02);  // THRE was still pending
    CHECK(g.in(U::kIirFcr) == 0x01);
    CHECK_FALSE(g.pin);
    CHECK(g.drain() == "ab");

    SECTION("with FIFOs the interrupt follows the end of a burst")
    {
        g.out(U::kIirFcr, UART_FCR_ENABLE_FIFO);
        g.out(U::kIer, 0);
        g.out(U::kIer, U::kIerThri);
        CHECK(g.pin);
        CHECK(g.in(U::kIirFcr) == 0xc2);
        for (int i = 0; i < 16; ++i)
            CHECK(g.out(U::kRbrThr, static_cast<uint8_t>('0' + i)) == IrqEdge::None);
        CHECK(g.in(U::kIirFcr) == 0xc2);  // the burst ended with this read: reported, cleared
        CHECK_FALSE(g.pin);
        g.out(U::kRbrThr, '!');
        CHECK(g.in(U::kLsr) == (U::kLsrThre | U::kLsrTemt));
        CHECK(g.pin);  // the LSR read ended the burst
        g.in(U::kIirFcr);
        g.out(U::kRbrThr, '?');
        UartOutput o = g.uart.take_output(nullptr, 0);  // so does a host call
        CHECK(o.irq == IrqEdge::Raised);
        g.track(o.irq);
        CHECK(g.drain() == "0123456789:;<=>?!?");
    }
}

TEST_CASE("uart: IIR reports sources by priority", "[devices][uart]")
{
    Rig g;
    g.out(U::kIirFcr, UART_FCR_ENABLE_FIFO);  // trigger 1
    g.out(U::kMcr, U::kMcrOut2);
    for (int i = 0; i < 17; ++i)
        g.rx(static_cast<uint8_t>('A' + i));  // 16 kept, one overrun
    g.out(U::kIer, 0x0f);
    // The modem status source: make a delta through loopback and come back.
    g.out(U::kMcr, U::kMcrOut2 | U::kMcrLoop);
    g.out(U::kMcr, U::kMcrOut2);
    CHECK((g.uart.msr() & U::kMsrDeltas) != 0);
    CHECK(g.pin);

    CHECK(g.in(U::kIirFcr) == 0xc6);  // line status (OE)
    CHECK(g.in(U::kLsr) == (U::kLsrDr | U::kLsrOe | U::kLsrThre | U::kLsrTemt));
    CHECK(g.in(U::kIirFcr) == 0xc4);  // received data
    std::string got;
    while (g.in(U::kLsr) & U::kLsrDr)
        got.push_back(static_cast<char>(g.in(U::kRbrThr)));
    CHECK(got == "ABCDEFGHIJKLMNOP");
    CHECK(g.in(U::kIirFcr) == 0xc2);  // THRE (cleared by this read)
    CHECK(g.in(U::kIirFcr) == 0xc0);  // modem status
    CHECK(g.pin);
    CHECK((g.in(U::kMsr) & U::kMsrDeltas) != 0);
    CHECK(g.in(U::kIirFcr) == 0xc1);
    CHECK_FALSE(g.pin);
}

TEST_CASE("uart: transmitting with THRE interrupts as Linux does", "[devices][uart]")
{
    Rig g;
    linux_bring_up(g);
    CHECK_FALSE(g.pin);

    std::string message;
    for (int i = 0; i < 300; ++i)
        message.push_back(static_cast<char>('a' + i % 26));
    std::string pending = message;
    std::string received;
    bool tx_running = true;
    // start_tx(): enable THRI; the interrupt comes at once because THR is empty.
    CHECK(g.out(UART_IER, static_cast<uint8_t>(g.uart.ier() | U::kIerThri)) == IrqEdge::Raised);
    int interrupts = 0;
    uint64_t handled_raises = g.raises;
    while (g.pin) {
        ++interrupts;
        REQUIRE(interrupts < 100);
        int passes = 0;
        while (linux_handle_irq(g, pending, received, tx_running))
            REQUIRE(++passes < 1000);
        CHECK_FALSE(g.pin);  // the handler leaves only when IIR says nothing is pending
    }
    CHECK(g.raises == handled_raises);
    CHECK(pending.empty());
    CHECK_FALSE(tx_running);
    CHECK(g.drain() == message);
    CHECK(g.uart.stats().tx_dropped == 0);
}

TEST_CASE("uart: a full transmit queue holds the guest back and loses nothing", "[devices][uart]")
{
    Rig g;
    linux_bring_up(g);
    std::string pending;
    for (size_t i = 0; i < 3 * U::kTxQueueSize + 77; ++i)
        pending.push_back(static_cast<char>(i * 7 + i / 13));
    const std::string message = pending;
    std::string received, host;
    bool tx_running = true;
    g.out(UART_IER, static_cast<uint8_t>(g.uart.ier() | U::kIerThri));

    int stalls = 0;
    while (tx_running) {
        while (linux_handle_irq(g, pending, received, tx_running)) {
        }
        if (!tx_running)
            break;
        // The guest is stalled: the queue is nearly full, THRE and TEMT read 0, no interrupt.
        ++stalls;
        REQUIRE(stalls < 1000);
        CHECK_FALSE(g.pin);
        CHECK((g.uart.lsr() & (U::kLsrThre | U::kLsrTemt)) == 0);
        CHECK(g.uart.output_pending() > U::kTxQueueSize - U::kFifoSize);
        // The host drains a little at a time, as the real UART has room.
        size_t before = g.uart.output_pending();
        host += g.drain(5);
        CHECK(g.uart.output_pending() == before - 5);
        while (!g.pin)
            host += g.drain(16);  // room for a FIFO's worth again: THRE rises
        CHECK((g.uart.lsr() & U::kLsrThre) != 0);
    }
    host += g.drain();
    CHECK(stalls >= 2);
    CHECK(host == message);
    CHECK(g.uart.stats().tx_dropped == 0);
    CHECK(g.uart.stats().tx_bytes == message.size());
    CHECK(g.uart.stats().tx_drained == message.size());

    SECTION("a guest that ignores THRE loses bytes only once the queue is really full")
    {
        for (size_t i = 0; i < U::kTxQueueSize + 10; ++i)
            g.out(UART_TX, 'z');
        CHECK(g.uart.output_pending() == U::kTxQueueSize);
        CHECK(g.uart.stats().tx_dropped == 10);
        CHECK(g.drain(U::kTxQueueSize) == std::string(U::kTxQueueSize, 'z'));
    }
    SECTION("take_output with no buffer takes nothing")
    {
        g.out(UART_TX, 'q');
        UartOutput o = g.uart.take_output(nullptr, 10);
        CHECK(o.count == 0);
        CHECK(g.uart.output_pending() == 1);
    }
}

TEST_CASE("uart: receiving with the data interrupt, trigger levels and the timeout", "[devices][uart]")
{
    Rig g;
    g.out(U::kMcr, U::kMcrOut2);
    g.out(U::kIer, U::kIerRdi);

    SECTION("without FIFOs every byte interrupts")
    {
        CHECK(g.uart.receive_room() == 1);
        CHECK(g.rx('k') == IrqEdge::Raised);
        CHECK(g.in(U::kIirFcr) == 0x04);
        CHECK(g.in(U::kLsr) == (U::kLsrDr | U::kLsrThre | U::kLsrTemt));
        CHECK(g.in(U::kRbrThr) == 'k');
        CHECK_FALSE(g.pin);
        CHECK(g.in(U::kLsr) == (U::kLsrThre | U::kLsrTemt));
        CHECK(g.in(U::kIirFcr) == 0x01);
    }
    SECTION("with FIFOs: the trigger level, then the character timeout")
    {
        const uint8_t triggers[4][2] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}};
        for (const auto& t : triggers) {
            g.out(U::kIirFcr, t[0]);
            CHECK(g.uart.rx_trigger() == t[1]);
            for (int i = 0; i + 1 < t[1]; ++i) {
                CHECK(g.rx(static_cast<uint8_t>(i)) == IrqEdge::None);
                CHECK(g.in(U::kIirFcr) == 0xc1);
            }
            CHECK(g.rx(0x55) == IrqEdge::Raised);  // the trigger level
            CHECK(g.in(U::kIirFcr) == 0xc4);
            g.in(U::kRbrThr);  // below the trigger again
            if (t[1] > 1) {
                CHECK_FALSE(g.pin);
                CHECK(g.idle() == IrqEdge::Raised);  // character timeout
                CHECK(g.in(U::kIirFcr) == 0xcc);
                // Reading does not end the timeout while data remains; a new byte restarts it.
                g.in(U::kRbrThr);
                if (g.uart.rx_level() > 0) {
                    CHECK(g.in(U::kIirFcr) == 0xcc);
                    CHECK(g.rx(0x66) == IrqEdge::Lowered);
                    CHECK(g.idle() == IrqEdge::Raised);
                }
            }
            while (g.in(U::kLsr) & U::kLsrDr)
                g.in(U::kRbrThr);
            CHECK_FALSE(g.pin);
            CHECK(g.in(U::kIirFcr) == 0xc1);
            g.out(U::kIirFcr, 0);
        }
    }
    SECTION("a Linux console reading typed input")
    {
        Rig l;
        linux_bring_up(l);
        std::string pending, received;
        bool tx_running = false;
        const std::string typed = "root\nls -l /proc/interrupts\n";
        for (char c : typed) {
            l.rx(static_cast<uint8_t>(c));
            l.idle();  // a human types slowly: the timeout runs out after every key
            CHECK(l.pin);
            while (linux_handle_irq(l, pending, received, tx_running)) {
            }
            CHECK_FALSE(l.pin);
        }
        CHECK(received == typed);
        // A pasted burst: interrupts at the trigger level, the tail on the timeout.
        uint64_t overruns = l.uart.stats().rx_overruns;  // size_fifo()'s, during the probe
        const std::string burst = "0123456789abcdefghij";
        received.clear();
        int interrupts = 0;
        for (char c : burst) {
            l.rx(static_cast<uint8_t>(c));
            if (l.pin) {
                ++interrupts;
                while (linux_handle_irq(l, pending, received, tx_running)) {
                }
            }
        }
        l.idle();
        if (l.pin) {
            ++interrupts;
            while (linux_handle_irq(l, pending, received, tx_running)) {
            }
        }
        CHECK(received == burst);
        CHECK(interrupts == 3);  // 8 + 8 at the trigger level, 4 on the timeout
        CHECK(l.uart.stats().rx_overruns == overruns);
    }
    SECTION("FIFO resets and mode changes empty the receiver")
    {
        g.out(U::kIirFcr, 0x01);
        g.rx('1');
        g.rx('2');
        CHECK(g.uart.rx_level() == 2);
        g.out(U::kIirFcr, 0x01 | 0x04);  // transmit reset only
        CHECK(g.uart.rx_level() == 2);
        g.out(U::kIirFcr, 0x01 | 0x02);
        CHECK(g.uart.rx_level() == 0);
        CHECK_FALSE(g.pin);
        g.rx('3');
        g.out(U::kIirFcr, 0x00);  // leaving FIFO mode
        CHECK(g.uart.rx_level() == 0);
        g.rx('4');
        g.out(U::kIirFcr, 0x01);  // entering it
        CHECK(g.uart.rx_level() == 0);
        CHECK_FALSE(g.pin);
    }
}

TEST_CASE("uart: receiver overrun", "[devices][uart]")
{
    Rig g;
    g.out(U::kMcr, U::kMcrOut2);

    SECTION("with FIFOs the 17th byte is lost and the FIFO kept")
    {
        g.out(U::kIirFcr, 0x01);
        for (int i = 0; i < 16; ++i) {
            CHECK(g.uart.receive_room() == static_cast<size_t>(16 - i));
            g.rx(static_cast<uint8_t>('a' + i));
        }
        CHECK(g.uart.receive_room() == 0);
        CHECK((g.uart.lsr() & U::kLsrOe) == 0);
        g.rx('!');
        CHECK(g.uart.stats().rx_overruns == 1);
        CHECK(g.uart.stats().rx_bytes == 16);
        CHECK(g.out(U::kIer, U::kIerRlsi) == IrqEdge::Raised);
        CHECK(g.in(U::kIirFcr) == 0xc6);
        CHECK(g.in(U::kLsr) == (U::kLsrDr | U::kLsrOe | U::kLsrThre | U::kLsrTemt));
        CHECK_FALSE(g.pin);  // reading LSR clears OE
        CHECK(g.in(U::kLsr) == (U::kLsrDr | U::kLsrThre | U::kLsrTemt));
        std::string got;
        while (g.in(U::kLsr) & U::kLsrDr)
            got.push_back(static_cast<char>(g.in(U::kRbrThr)));
        CHECK(got == "abcdefghijklmnop");
    }
    SECTION("without FIFOs the new byte overwrites the unread one")
    {
        g.rx('a');
        g.rx('b');
        CHECK(g.uart.stats().rx_overruns == 1);
        CHECK(g.in(U::kLsr) == (U::kLsrDr | U::kLsrOe | U::kLsrThre | U::kLsrTemt));
        CHECK(g.in(U::kRbrThr) == 'b');
        CHECK(g.in(U::kLsr) == (U::kLsrThre | U::kLsrTemt));
    }
}

TEST_CASE("uart: loopback mode", "[devices][uart]")
{
    Rig g;
    g.out(U::kIirFcr, 0x01);
    g.out(U::kIer, 0x0f);
    CHECK(g.in(U::kIirFcr) == 0xc2);  // THRE from enabling ETBEI; OUT2 is off, so no line
    CHECK(g.raises == 0);

    g.out(U::kMcr, U::kMcrLoop | U::kMcrOut2);
    CHECK(g.uart.loopback());
    CHECK(g.uart.receive_room() == 0);
    // The modem outputs drive the inputs: only OUT2 -> DCD is on, so CTS and DSR fell.
    CHECK(g.in(U::kMsr) == (U::kMsrDcd | U::kMsrDcts | U::kMsrDdsr));
    g.out(U::kMcr, U::kMcrLoop | U::kMcrOut2 | U::kMcrRts | U::kMcrDtr | U::kMcrOut1);
    CHECK(g.in(U::kMsr) == (0xf0 | U::kMsrDcts | U::kMsrDdsr));
    g.out(U::kMcr, U::kMcrLoop | U::kMcrOut2 | U::kMcrRts | U::kMcrDtr);
    CHECK(g.in(U::kIirFcr) == 0xc0);  // modem status: RI's trailing edge
    CHECK(g.in(U::kMsr) == (0xb0 | U::kMsrTeri));
    CHECK(g.in(U::kIirFcr) == 0xc1);

    // Transmitted bytes come back through the receiver and never reach the host.
    for (char c : std::string("hello"))
        g.out(U::kRbrThr, static_cast<uint8_t>(c));
    CHECK(g.uart.output_pending() == 0);
    CHECK(g.uart.stats().loopback_bytes == 5);
    CHECK(g.in(U::kIirFcr) == 0xc4);  // at trigger level 1
    std::string got;
    while (g.in(U::kLsr) & U::kLsrDr)
        got.push_back(static_cast<char>(g.in(U::kRbrThr)));
    CHECK(got == "hello");
    // Input from the outside is disconnected.
    g.rx('x');
    CHECK(g.uart.rx_level() == 0);
    CHECK(g.uart.stats().rx_dropped_loopback == 1);

    // On a PC the IRQ does not leave the UART in loopback (OUT2 is forced inactive) ...
    g.out(U::kRbrThr, 'y');
    CHECK((g.uart.iir() & 0x0f) == 0x04);
    CHECK_FALSE(g.uart.irq_line());
    // ... and reaches the interrupt controller as soon as loopback ends.
    CHECK(g.out(U::kMcr, U::kMcrOut2 | U::kMcrRts | U::kMcrDtr) == IrqEdge::Raised);
    CHECK(g.in(U::kRbrThr) == 'y');
    g.out(U::kRbrThr, 'z');
    CHECK(g.drain() == "z");
}

TEST_CASE("uart: MCR.OUT2 gates the IRQ line", "[devices][uart]")
{
    Rig g;
    g.out(U::kIer, U::kIerRdi);
    g.rx('a');
    CHECK(g.uart.iir() == 0x04);
    CHECK_FALSE(g.uart.irq_line());
    CHECK(g.out(U::kMcr, U::kMcrDtr | U::kMcrRts | U::kMcrOut1) == IrqEdge::None);
    CHECK(g.out(U::kMcr, U::kMcrOut2) == IrqEdge::Raised);
    CHECK(g.out(U::kMcr, 0) == IrqEdge::Lowered);
    CHECK(g.out(U::kMcr, U::kMcrOut2) == IrqEdge::Raised);
    CHECK(g.in(U::kRbrThr) == 'a');
    CHECK_FALSE(g.pin);
    CHECK(g.uart.stats().irq_raised == 2);
    CHECK(g.uart.stats().irq_lowered == 2);
}

TEST_CASE("uart: wide and malformed accesses", "[devices][uart]")
{
    Rig g;
    g.out(U::kScr, 0x5c);
    g.out(U::kIer, 0x03);
    g.rx('r');

    // A word read at 0 is RBR then IER, with RBR's side effect.
    auto r = g.uart.read(0, 2);
    REQUIRE(r.ok());
    CHECK(r.value().value == 0x0372);
    CHECK(g.uart.rx_level() == 0);
    // A dword read at 6 is MSR, SCR and two bytes that belong to no register.
    r = g.uart.read(6, 4);
    REQUIRE(r.ok());
    CHECK(r.value().value == 0xffff'5cb0);
    CHECK(g.uart.stats().outside_bytes == 2);
    // A word write at 3 sets LCR and MCR; a dword write at 7 sets SCR and drops the rest.
    REQUIRE(g.uart.write(3, 2, 0xab08'1b03).ok());
    CHECK(g.uart.lcr() == 0x03);
    CHECK(g.uart.mcr() == 0x1b);
    REQUIRE(g.uart.write(7, 4, 0x1122'3344).ok());
    CHECK(g.uart.scratch() == 0x44);
    CHECK(g.uart.stats().outside_bytes == 5);
    CHECK(g.uart.stats().wide_accesses == 4);
    g.out(U::kMcr, 0);

    // Refused: no state changes at all.
    uint8_t before_ier = g.uart.ier();
    for (uint8_t size : {uint8_t{0}, uint8_t{3}, uint8_t{5}, uint8_t{8}, uint8_t{255}}) {
        CHECK(g.uart.read(0, size).error() == UartError::BadSize);
        CHECK(g.uart.write(1, size, 0xffff'ffff).error() == UartError::BadSize);
    }
    for (uint32_t offset : {8u, 9u, 0x2f8u, 0xffff'ffffu}) {
        CHECK(g.uart.read(offset, 1).error() == UartError::BadOffset);
        CHECK(g.uart.write(offset, 4, 0).error() == UartError::BadOffset);
    }
    CHECK(g.uart.stats().errors == 18);
    CHECK(g.uart.ier() == before_ier);
    CHECK(g.uart.output_pending() == 0);
    // Byte accesses use the low byte of the value only.
    REQUIRE(g.uart.write(U::kScr, 1, 0xdead'be11).ok());
    CHECK(g.uart.scratch() == 0x11);
}

TEST_CASE("uart: a hostile guest and a careless host", "[devices][uart]")
{
    vlibos::test::Lcg rng{0x16550a};
    Rig g;
    const uint8_t sizes[] = {1, 1, 1, 1, 1, 1, 2, 4, 0, 3, 8};
    uint64_t guest_bytes_out = 0;
    for (int step = 0; step < 300'000; ++step) {
        auto offset = static_cast<uint32_t>(rng.below(10));
        uint8_t size = sizes[rng.below(sizeof sizes)];
        auto value = static_cast<uint32_t>(rng.next());
        switch (rng.below(12)) {
        case 0:
        case 1:
        case 2:
        case 3: {
            auto r = g.uart.read(offset, size);
            bool valid = offset < 8 && (size == 1 || size == 2 || size == 4);
            REQUIRE(r.ok() == valid);
            if (r.ok()) {
                if (size < 4)
                    REQUIRE(r.value().value < (1u << (8 * size)));
                g.track(r.value().irq);
            }
            break;
        }
        case 4:
        case 5:
        case 6:
        case 7: {
            // Bias towards the registers that matter and the values Linux uses.
            if (rng.below(2) == 0)
                value &= 0x9f;
            auto r = g.uart.write(offset, size, value);
            REQUIRE(r.ok() == (offset < 8 && (size == 1 || size == 2 || size == 4)));
            if (r.ok())
                g.track(r.value());
            break;
        }
        case 8:
        case 9:
            g.rx(static_cast<uint8_t>(value));
            break;
        case 10:
            g.idle();
            break;
        default: {
            uint8_t buf[64];
            size_t max = rng.below(65);
            UartOutput o = g.uart.take_output(rng.below(20) == 0 ? nullptr : buf, max);
            REQUIRE(o.count <= max);
            guest_bytes_out += o.count;
            g.track(o.irq);
            break;
        }
        }

        const U& u = g.uart;
        REQUIRE(g.pin == u.irq_line());
        REQUIRE(u.rx_level() <= (u.fifo_enabled() ? U::kFifoSize : 1));
        REQUIRE(u.output_pending() <= U::kTxQueueSize);
        uint8_t lsr = u.lsr();
        bool room = U::kTxQueueSize - u.output_pending() >= U::kFifoSize;
        REQUIRE(((lsr & U::kLsrThre) != 0) == room);
        REQUIRE(((lsr & U::kLsrTemt) != 0) == room);
        REQUIRE(((lsr & U::kLsrDr) != 0) == (u.rx_level() > 0));
        REQUIRE((lsr & 0x9c) == 0);
        uint8_t iir = u.iir();
        REQUIRE((iir & 0x30) == 0);
        REQUIRE((iir & 0xc0) == (u.fifo_enabled() ? 0xc0 : 0));
        uint8_t id = iir & 0x0f;
        REQUIRE((id == 0x01 || id == 0x00 || id == 0x02 || id == 0x04 || id == 0x06 || id == 0x0c));
        if (id == 0x0c)
            REQUIRE(u.fifo_enabled());
        if (u.irq_line())
            REQUIRE(((u.mcr() & U::kMcrOut2) && !(u.mcr() & U::kMcrLoop) && id != 0x01));
        REQUIRE((u.ier() & 0xf0) == 0);
        REQUIRE((u.mcr() & 0xe0) == 0);
        const U::Stats& s = u.stats();
        REQUIRE(s.tx_bytes == s.tx_drained + u.output_pending());
        REQUIRE(s.irq_raised - s.irq_lowered == (u.irq_line() ? 1u : 0u));
    }
    const U::Stats& s = g.uart.stats();
    CHECK(s.tx_drained == guest_bytes_out);
    // The run reached the interesting states.
    CHECK(s.tx_bytes > 1000);
    CHECK(s.loopback_bytes > 1000);
    CHECK(s.rx_bytes > 1000);
    CHECK(s.rx_overruns > 100);
    CHECK(s.irq_raised > 1000);
    CHECK(s.errors > 1000);
    CHECK(s.outside_bytes > 100);
}
