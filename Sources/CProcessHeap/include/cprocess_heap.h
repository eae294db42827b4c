#ifndef CPROCESS_HEAP_H
#define CPROCESS_HEAP_H

#include <stdint.h>

/* The C allocator's view of this process's heap (glibc's mallinfo2, summed over every arena). All zero, with
 * available = 0, where the C library is not glibc. */
struct cprocess_heap_stats {
	int available;
	/* Bytes in chunks handed out by malloc and not yet freed, including large blocks served by mmap. */
	uint64_t in_use;
	/* Bytes the arenas hold in free chunks (including each arena's top): freed by the program, kept by malloc. */
	uint64_t free;
	/* Of those, the main arena's top chunk, which malloc_trim could give back at once. */
	uint64_t releasable;
	/* Bytes in large blocks served by mmap (part of in_use). */
	uint64_t mmapped;
	/* Bytes the arenas took from the system (sbrk and arena mmaps; not the mmap'd large blocks). */
	uint64_t arena;
	/* Arenas (the main one and one per thread group that met contention), from malloc_info; 0 if unknown. */
	uint32_t arenas;
};

/* with_arenas = 0 skips the arena count (arenas stays 0): it writes malloc_info's XML, which the other fields do not
 * need. */
struct cprocess_heap_stats cprocess_heap_stats(int with_arenas);

/* Gives the heap's free memory back to the system: glibc's malloc_trim(0) shrinks every arena's top and releases
 * (madvise) the whole pages inside its free chunks. Returns 1 when memory was released, 0 when none was or the C
 * library is not glibc. Walks every arena under its lock. */
int cprocess_heap_trim(void);

/* What cprocess_release_file_pages did. */
struct cprocess_file_pages {
	/* Mappings advised. */
	uint32_t mappings;
	/* Their resident bytes before (read from /proc/self/smaps just before). */
	uint64_t resident_before;
	/* The first errno met (0: none); EINVAL from MADV_PAGEOUT means a kernel older than 5.4. */
	int error;
};

/* Asks the kernel to reclaim the pages of this process's read-only, private, file-backed mappings (the program's and
 * its libraries' code and constants) whose resident pages are all file pages: madvise(MADV_PAGEOUT), and first, with
 * random_access, MADV_RANDOM, so that a page needed again is read alone instead of with its readahead neighbours.
 * The kernel leaves the pages another mapping shares, and every page of a file this process neither owns nor may
 * write; the executable's own mappings are then unmapped outright (MADV_DONTNEED: this process's page-table entries
 * only; the page cache keeps what others map). Then drops what the page cache holds of the executable and nobody
 * maps (posix_fadvise POSIX_FADV_DONTNEED). With only_path, only the mappings of that file, which stands for the
 * executable. Reads /proc/self/smaps. */
struct cprocess_file_pages cprocess_release_file_pages(int random_access, const char *only_path);

#endif
