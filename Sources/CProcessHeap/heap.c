#define _GNU_SOURCE
#include "cprocess_heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef __GLIBC__
/* malloc_info's XML has one <heap nr="…"> per arena. It allocates (the stream's buffer), which is fine a few times
 * a minute; it takes each arena's lock in turn, like mallinfo2. */
static uint32_t count_arenas(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *stream = open_memstream(&text, &size);
	if (!stream)
		return 0;
	int ok = malloc_info(0, stream) == 0;
	fclose(stream);
	uint32_t n = 0;
	if (ok && text) {
		for (const char *p = text; (p = strstr(p, "<heap nr=")) != NULL; p += 9)
			n++;
	}
	free(text);
	return n;
}
#endif

struct cprocess_heap_stats cprocess_heap_stats(int with_arenas)
{
	struct cprocess_heap_stats s = {0};
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 m = mallinfo2();
	s.available = 1;
	s.in_use = (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
	s.free = (uint64_t)m.fordblks;
	s.releasable = (uint64_t)m.keepcost;
	s.mmapped = (uint64_t)m.hblkhd;
	s.arena = (uint64_t)m.arena;
	if (with_arenas)
		s.arenas = count_arenas();
#endif
	return s;
}

int cprocess_heap_trim(void)
{
#ifdef __GLIBC__
	return malloc_trim(0);
#else
	return 0;
#endif
}
