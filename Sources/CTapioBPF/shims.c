#define _GNU_SOURCE
#include "ctapio_bpf.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <unistd.h>

int ctapio_perf_event_open_cpu_clock(int cpu, uint64_t freq)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = 1;
	attr.sample_freq = freq;
	/* pid -1, cpu N: every task on that CPU; the BPF program decides what to keep. */
	int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Per thread: the loader's open/load runs on the caller's thread, and libbpf prints on that thread. */
static _Thread_local char failed_prog[128];
static _Thread_local int failed_err;
static _Thread_local char last_warning[512];
/* What libbpf printed during open/load, for the loader to log at debug level (bounded; the newest lines kept). */
static _Thread_local char log_buf[16384];
static _Thread_local size_t log_len;
static int print_verbose;

static void log_append(const char *line)
{
	size_t n = strlen(line);
	if (n >= sizeof(log_buf))
		n = sizeof(log_buf) - 1;
	if (log_len + n >= sizeof(log_buf)) {
		/* Drop the oldest half: the lines just before a failure are the ones that explain it. */
		size_t keep = log_len / 2;
		memmove(log_buf, log_buf + (log_len - keep), keep);
		log_len = keep;
		if (log_len + n >= sizeof(log_buf))
			log_len = 0;
	}
	memcpy(log_buf + log_len, line, n);
	log_len += n;
	log_buf[log_len] = 0;
}

size_t ctapio_libbpf_take_log(char *buf, size_t len)
{
	size_t n = log_len < len ? log_len : (len ? len - 1 : 0);
	if (len) {
		memcpy(buf, log_buf + (log_len - n), n);
		buf[n] = 0;
	}
	log_len = 0;
	log_buf[0] = 0;
	return n;
}

static int ctapio_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return n;
	log_append(line);
	char name[128];
	int err;
	/* libbpf 1.x: "libbpf: prog 'NAME': failed to load: -13" */
	const char *p = strstr(line, "prog '");
	if (p && sscanf(p, "prog '%127[^']': failed to load: %d", name, &err) == 2 && !failed_prog[0]) {
		snprintf(failed_prog, sizeof(failed_prog), "%s", name);
		failed_err = err;
	}
	if (level == LIBBPF_WARN) {
		size_t len = strlen(line);
		while (len && line[len - 1] == '\n')
			line[--len] = 0;
		snprintf(last_warning, sizeof(last_warning), "%s", line);
	}
	if (print_verbose && level != LIBBPF_DEBUG)
		fputs(line, stderr);
	return n;
}

void ctapio_libbpf_install_print(int verbose)
{
	print_verbose = verbose;
	libbpf_set_print(ctapio_print);
}

int ctapio_libbpf_take_failed_program(char *name, size_t len)
{
	int err = failed_prog[0] ? (failed_err ? failed_err : -EINVAL) : 0;
	if (len)
		snprintf(name, len, "%s", failed_prog);
	failed_prog[0] = 0;
	failed_err = 0;
	return err;
}

void ctapio_libbpf_last_warning(char *buf, size_t len)
{
	if (len)
		snprintf(buf, len, "%s", last_warning);
	last_warning[0] = 0;
}

int ctapio_wait_set_create(int ring_epoll_fd, int event_fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = ring_epoll_fd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ring_epoll_fd, &ev) < 0)
		goto fail;
	ev.data.fd = event_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, event_fd, &ev) < 0)
		goto fail;
	return ep;
fail:;
	int e = errno;
	close(ep);
	return -e;
}

int ctapio_wait_set_wait(int wait_fd, int event_fd, int timeout_ms)
{
	struct epoll_event evs[2];
	int n = epoll_wait(wait_fd, evs, 2, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == event_fd) {
			uint64_t v;
			/* Reset the counter: the eventfd is level-triggered in this epoll set. */
			ssize_t ignored = read(event_fd, &v, sizeof(v));
			(void)ignored;
			return 1;
		}
	}
	return 0;
}

struct ctapio_c_reader {
	struct ring_buffer *rb;
	uint64_t checksum;
};

static int c_reader_sample(void *ctx, void *data, size_t size)
{
	struct ctapio_c_reader *r = ctx;
	const struct tapio_event_header *h = data;
	/* Read the fields a consumer would keep, in place: the same work the Swift reader does before
	 * building its value. */
	if (h->type == TAPIO_EV_MEMORY || h->type == TAPIO_EV_BENCH) {
		const struct tapio_memory_event *m = data;
		r->checksum += m->anon_bytes + m->file_bytes + m->shmem_bytes + h->pid + h->cgroup_id + h->ts_ns +
			       (unsigned char)h->comm[0];
	} else {
		r->checksum += h->pid + size;
	}
	return 0;
}

struct ctapio_c_reader *ctapio_c_reader_new(int ring_map_fd)
{
	struct ctapio_c_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->rb = ring_buffer__new(ring_map_fd, c_reader_sample, r, NULL);
	if (!r->rb) {
		free(r);
		return NULL;
	}
	return r;
}

long ctapio_c_reader_consume(struct ctapio_c_reader *reader)
{
	return ring_buffer__consume(reader->rb);
}

uint64_t ctapio_c_reader_checksum(const struct ctapio_c_reader *reader)
{
	return reader->checksum;
}

void ctapio_c_reader_free(struct ctapio_c_reader *reader)
{
	if (!reader)
		return;
	ring_buffer__free(reader->rb);
	free(reader);
}

int ctapio_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

#include <malloc.h>
void ctapio_release_free_heap(void)
{
	malloc_trim(0);
}
