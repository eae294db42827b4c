/* C side of the Tapio BPF loader: the shared event layout (bpf/tapio_events.h, the one definition both the
 * BPF programs and Swift read), the embedded BPF object, and the few helpers Swift cannot call directly
 * (variadic syscall(), va_list formatting, packed epoll_event). */
#ifndef CTAPIO_BPF_H
#define CTAPIO_BPF_H

#include <stddef.h>
#include <stdint.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "../../../bpf/tapio_events.h"

/* The linked BPF object embedded by the generated skeleton (scripts/gen-bpf.sh). */
const void *ctapio_bpf_object_bytes(size_t *size);

/* The generated skeleton, opaque to Swift: open (NULL + errno on failure), set the .rodata tunables, load
 * (negative errno), destroy. Programs and maps are reached through the generic libbpf API on the object. */
struct tapio_bpf;
/* btf_custom_path: the kernel BTF file to relocate against (NULL: libbpf's default search). */
struct tapio_bpf *ctapio_skel_open(const char *btf_custom_path);
struct bpf_object *ctapio_skel_object(struct tapio_bpf *skel);
void ctapio_skel_set_page_shift(struct tapio_bpf *skel, uint32_t shift);
int ctapio_skel_load(struct tapio_bpf *skel);
void ctapio_skel_destroy(struct tapio_bpf *skel);

/* perf_event_open(2) of the software cpu-clock on one CPU, all tasks, `freq` samples per second.
 * Returns the fd, or -errno. */
int ctapio_perf_event_open_cpu_clock(int cpu, uint64_t freq);

/* Installs the libbpf print callback: warnings go to stderr when `verbose`, and every message is scanned for
 * "prog 'NAME': failed to load" so the loader can name the program that broke a load. */
void ctapio_libbpf_install_print(int verbose);

/* After a failed bpf_object__load on this thread: copies the name of the program that failed into `name`
 * and returns its (negative) error, or returns 0 if no program was named. Clears the record. */
int ctapio_libbpf_take_failed_program(char *name, size_t len);

/* The last libbpf warning printed on this thread (for error messages); empty when none. */
void ctapio_libbpf_last_warning(char *buf, size_t len);
/* Everything libbpf printed on this thread since the last call (newest kept when over the buffer), then cleared. */
size_t ctapio_libbpf_take_log(char *buf, size_t len);

/* Returns freed heap to the system (malloc_trim): loading parses the kernel BTF, megabytes freed after. */
void ctapio_release_free_heap(void);

/* A non-blocking eventfd (fd or -errno): close() writes it to end the reader's wait. */
int ctapio_eventfd(void);

/* An epoll set over the ring buffer's epoll fd and an eventfd used to interrupt the wait. -errno on error. */
int ctapio_wait_set_create(int ring_epoll_fd, int event_fd);
/* Waits up to timeout_ms; returns 1 when woken by the eventfd, 0 otherwise, or -errno. */
int ctapio_wait_set_wait(int wait_fd, int event_fd, int timeout_ms);

/* A plain C libbpf reader of the same ring buffer, for the benchmark's side-by-side comparison: each record's
 * header and payload are read in place and folded into a checksum. */
struct ctapio_c_reader;
struct ctapio_c_reader *ctapio_c_reader_new(int ring_map_fd);
/* Consumes everything available; returns records consumed (or -errno). */
long ctapio_c_reader_consume(struct ctapio_c_reader *reader);
uint64_t ctapio_c_reader_checksum(const struct ctapio_c_reader *reader);
void ctapio_c_reader_free(struct ctapio_c_reader *reader);

#endif
