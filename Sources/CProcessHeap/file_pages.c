#define _GNU_SOURCE
#include "cprocess_heap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* One mapping of /proc/self/smaps: its range, and whether it may be advised (read-only, private, backed by a file, no
 * anonymous (copy-on-write) page resident). */
struct mapping {
	uintptr_t start, end;
	int file_backed_readonly;
	/* A mapping of the program's own file (or of only_path): never unmapped while the process runs. */
	int own_file;
	/* VmFlags has lo (mlocked), pf/io (PFN or I/O mappings) or ht (hugetlb): madvise refuses or does not apply. */
	int special;
	uint64_t rss_kib, anon_kib;
};

static void advise(const struct mapping *m, int random_access, struct cprocess_file_pages *out)
{
	if (!m->file_backed_readonly || m->special || m->end <= m->start)
		return;
	/* Mappings a write made partly anonymous (relocations, RELRO) are left alone: paging them out would mean swap. */
	if (m->anon_kib != 0)
		return;
	size_t length = m->end - m->start;
	if (random_access && madvise((void *)m->start, length, MADV_RANDOM) != 0 && out->error == 0 && errno != ENOMEM)
		out->error = errno;
	if (madvise((void *)m->start, length, MADV_PAGEOUT) != 0) {
		/* ENOMEM: another thread unmapped (part of) it since smaps was read — nothing to release there. */
		if (out->error == 0 && errno != ENOMEM)
			out->error = errno;
		return;
	}
	/* MADV_PAGEOUT leaves the pages another mapping shares (the operator's, on its node: the same image's file,
	 * the same page cache) and, for a file this process neither owns nor may write, every page (the kernel's rule
	 * against a side channel). The program's own mappings are also unmapped outright: of a private mapping with no
	 * anonymous page, MADV_DONTNEED drops only this process's page-table entries, and a page needed again is
	 * faulted back from the page cache, or from the file. Only the program's own file: it is never unmapped, so the
	 * range cannot have become another thread's fresh anonymous memory (which MADV_DONTNEED would zero) since
	 * smaps was read. */
	if (m->own_file && madvise((void *)m->start, length, MADV_DONTNEED) != 0 && out->error == 0 && errno != ENOMEM)
		out->error = errno;
	out->mappings++;
	if (m->rss_kib <= (UINT64_MAX - out->resident_before) / 1024)
		out->resident_before += m->rss_kib * 1024;
}

struct cprocess_file_pages cprocess_release_file_pages(int random_access, const char *only_path)
{
	struct cprocess_file_pages out = {0};
	/* The program's own file, as smaps names it (a binary replaced on disk reads "… (deleted)" in both). */
	char own[4096] = {0};
	if (only_path) {
		snprintf(own, sizeof own, "%s", only_path);
	} else {
		ssize_t n = readlink("/proc/self/exe", own, sizeof own - 1);
		own[n > 0 ? (size_t)n : 0] = '\0';
	}
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f) {
		out.error = errno;
		return out;
	}
	/* Gather first, advise after: madvise while smaps is being read would change what it reports. */
	size_t count = 0, capacity = 0;
	struct mapping *maps = NULL;
	char *line = NULL;
	size_t size = 0;
	while (getline(&line, &size, f) > 0) {
		uintptr_t start, end;
		char perms[8] = {0};
		unsigned long long offset, inode;
		char dev[32];
		int path_at = 0;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %31s %llu %n", &start, &end, perms, &offset, dev, &inode,
			   &path_at) >= 6) {
			if (count == capacity) {
				size_t grown = capacity ? capacity * 2 : 64;
				struct mapping *bigger = realloc(maps, grown * sizeof *maps);
				if (!bigger) {
					out.error = ENOMEM;
					break;
				}
				maps = bigger;
				capacity = grown;
			}
			char *path = path_at > 0 ? line + path_at : line + strlen(line);
			path[strcspn(path, "\n")] = '\0';
			struct mapping *m = &maps[count++];
			m->start = start;
			m->end = end;
			m->rss_kib = m->anon_kib = 0;
			m->special = 0;
			/* Files in memory (memfd, POSIX shared memory) are shmem: paged out, they would go to swap. */
			int in_memory = strncmp(path, "/memfd:", 7) == 0 || strncmp(path, "/dev/shm/", 9) == 0;
			m->file_backed_readonly = inode != 0 && path[0] == '/' && !in_memory && perms[1] == '-' &&
						  perms[3] == 'p' && (only_path == NULL || strcmp(path, only_path) == 0);
			m->own_file = own[0] == '/' && strcmp(path, own) == 0;
			continue;
		}
		if (count == 0)
			continue;
		unsigned long long kib;
		if (sscanf(line, "Rss: %llu kB", &kib) == 1)
			maps[count - 1].rss_kib = kib;
		else if (sscanf(line, "Anonymous: %llu kB", &kib) == 1)
			maps[count - 1].anon_kib = kib;
		else if (strncmp(line, "VmFlags:", 8) == 0)
			maps[count - 1].special = strstr(line, " lo") || strstr(line, " pf") || strstr(line, " io") ||
						  strstr(line, " ht");
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < count; i++)
		advise(&maps[i], random_access, &out);
	free(maps);
	/* What the page cache still holds of the program's own file and no process maps — the readahead around start-up's
	 * faults — would be mapped back in by the next faults' fault-around. Only the executable: a shared library's
	 * cache serves other programs too. */
	int fd = open(only_path ? only_path : "/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (e != 0 && out.error == 0)
			out.error = e;
		close(fd);
	} else if (out.error == 0) {
		out.error = errno;
	}
	return out;
}
