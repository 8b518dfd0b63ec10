/* qemu-insn-count: a QEMU TCG plugin that counts the guest instructions a program
 * executes under qemu-user, printed at exit as "guest_insns N" on stderr (or to the file
 * given as the plugin argument out=PATH). scripts/pi-bench.sh uses it for the aarch64
 * column of the Pi benchmark (docs/benchmarks.md), as callgrind does for x86-64.
 * Licence: MIT.
 *
 * Debian ships qemu-user with plugin support but not qemu's plugin header, so the few
 * entry points used here are declared from the documented plugin API (QEMU 7.2, API
 * version 1). Each translated block adds its instruction count to one counter every time
 * it runs (an atomic add in a callback, so that the guest's threads, one host thread
 * each, lose no count); a block left early by an exception counts whole, a negligible
 * error for DSP code.
 *
 *   cc -shared -fPIC -O2 -o qemu-insn-count.so scripts/qemu-insn-count.c
 *   qemu-aarch64 -L SYSROOT -plugin ./qemu-insn-count.so,out=count.txt PROGRAM ARGS
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t id,
                                                      struct qemu_plugin_tb *tb));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
                                    void (*cb)(qemu_plugin_id_t id, void *userdata),
                                    void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t insns; /* atomic */
static char out_path[4096];

static void on_block(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    __atomic_fetch_add(&insns, (uint64_t)(uintptr_t)userdata, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uintptr_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS, (void *)n);
}

static void on_exit_report(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = out_path[0] ? fopen(out_path, "a") : NULL;
    fprintf(f ? f : stderr, "guest_insns %llu\n",
            (unsigned long long)__atomic_load_n(&insns, __ATOMIC_RELAXED));
    if (f)
        fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0 && strlen(argv[i] + 4) < sizeof out_path)
            strcpy(out_path, argv[i] + 4);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_report, NULL);
    return 0;
}
