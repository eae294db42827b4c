#!/usr/bin/env python3
"""Which of a running program's code pages are resident, by ELF section, and which functions lie on them.

Usage: resident-code.py PID BINARY [--order FILE [--sectioned NAMES]]
Reads /proc/PID/maps and /proc/PID/pagemap (the "present" bit, bit 63; no PFNs, so no CAP_SYS_ADMIN needed) for the
mappings of BINARY (unstripped: its symbol table names the functions), sums the present pages by section, and with
--order writes the names of every function overlapping a present page of .text, in address order: a
--symbol-ordering-file for lld. With --sectioned, only the functions named in NAMES (one per line: those with an
input section of their own, `.text.<name>`): lld moves a listed function's whole section, and a prebuilt library's
object without function sections would bring all its code along.
"""
import bisect, os, struct, subprocess, sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def sections(binary):
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        line = line.replace("[ ", "[")
        parts = line.split()
        if len(parts) < 7 or not parts[0].startswith("["):
            continue
        try:
            name, addr, off, size = parts[1], int(parts[3], 16), int(parts[4], 16), int(parts[5], 16)
        except ValueError:
            continue
        if addr and size:
            result.append((addr, addr + size, off, name))
    return sorted(result)


def load_segments(binary):
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "LOAD":
            segs.append((int(p[1], 16), int(p[2], 16), int(p[4], 16)))  # offset, vaddr, filesz
    return segs


def functions(binary):
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTWw":
            funcs.append((int(p[0], 16), int(p[1], 16), p[3]))
    funcs.sort()
    return funcs


def present_pages(pid, binary):
    real = os.path.realpath(binary)
    pages = []  # file offsets of present pages
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in maps:
            p = line.split()
            if len(p) < 6 or os.path.realpath(p[5]) != real and p[5] != real:
                continue
            start, end = (int(x, 16) for x in p[0].split("-"))
            offset = int(p[2], 16)
            n = (end - start) // PAGE
            pm.seek(start // PAGE * 8)
            data = pm.read(n * 8)
            for i in range(len(data) // 8):
                (entry,) = struct.unpack_from("<Q", data, i * 8)
                if entry >> 63 & 1:
                    pages.append((offset + i * PAGE, p[1]))
    return pages


def main():
    pid, binary = sys.argv[1], sys.argv[2]
    order = sys.argv[sys.argv.index("--order") + 1] if "--order" in sys.argv else None
    sectioned = None
    if "--sectioned" in sys.argv:
        with open(sys.argv[sys.argv.index("--sectioned") + 1]) as f:
            sectioned = set(line.strip() for line in f)
    segs = load_segments(binary)
    secs = sections(binary)
    starts = [s[0] for s in secs]

    def vaddr(off):
        for soff, va, size in segs:
            if soff <= off < soff + size:
                return va + off - soff
        return None

    by_section = {}
    text_pages = set()
    for off, perms in present_pages(pid, binary):
        va = vaddr(off)
        if va is None:
            by_section.setdefault("(outside file)", 0)
            by_section["(outside file)"] += PAGE
            continue
        i = bisect.bisect_right(starts, va) - 1
        name = secs[i][3] if i >= 0 and va < secs[i][1] + PAGE else "(between)"
        by_section[f"{name} {perms}"] = by_section.get(f"{name} {perms}", 0) + PAGE
        if name == ".text":
            text_pages.add(va // PAGE)
    total = sum(by_section.values())
    print(f"resident pages of {binary}: {total / 1048576:.1f} MiB")
    for name, b in sorted(by_section.items(), key=lambda kv: -kv[1]):
        if b >= 64 * 1024:
            print(f"  {b / 1048576:7.2f} MiB  {name}")
    if order:
        chosen = []
        for addr, size, name in functions(binary):
            if sectioned is not None and name not in sectioned:
                continue
            if size and any(pg in text_pages for pg in range(addr // PAGE, (addr + size - 1) // PAGE + 1)):
                chosen.append((addr, size, name))
        with open(order, "w") as f:
            for _, _, name in chosen:
                f.write(f"{name}\n")
        print(f"{len(chosen)} functions ({sum(s for _, s, _ in chosen) / 1048576:.1f} MiB) of their own sections on {len(text_pages)} resident .text pages -> {order}")


main()
