/* hello: the smallest RT application (docs/rt-apps.md). Prints the clock and its arguments, then
 * returns, which ends the application with status 0.
 *   hello: hello from ring 3 at 123456789 ns, args 'whatever the configuration says'        */
#include <vlibos/rt.h>

int main(const char* args)
{
    vlibos_printf("hello: hello from ring 3 at %llu ns, args '%s'\n", (unsigned long long)vlibos_clock_ns(), args);
    return 0;
}
