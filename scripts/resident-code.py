#!/usr/bin/env python3
"""Which of a running program's code pages are resident, by ELF section, and which functions lie on them.

Usage: resident-code.py PID BINARY [--mapped-as PATH] [--order FILE [--sectioned NAMES] [--map LINKMAP [--whole-below BYTES]]]
Reads /proc/PID/maps and /proc/PID/pagemap (the "present" bit, bit 63; no PFNs, so no CAP_SYS_ADMIN needed) for the
mappings of BINARY (unstripped: its symbol table names the functions), sums the present pages by section, and with
--order writes the names of every function overlapping a present page of .text, in address order: a
--symbol-ordering-file for lld. With --sectioned, only the functions named in NAMES (one per line: those with an
input section of their own, `.text.<name>`): lld moves a listed function's whole section, and a prebuilt library's
object without function sections would bring all its code along. With --mapped-as, the process maps the binary under
PATH (a container's view of the image's binary; BINARY is then the unstripped build of the same layout). With --map
(lld's -Map of BINARY), the link itself says which functions have a section of their own (instead of --sectioned),
and code of objects built without function sections is listed too when its object's whole .text is smaller than
BYTES (default 65536; 0: never): moving the whole object costs less than the 64-KiB neighbourhood that a page touched
in it brings in where it lies (fault-around); one symbol of it is listed, and lld moves the section holding it.
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


def present_pages(pid, binary, mapped_as=None):
    real = mapped_as or os.path.realpath(binary)
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


def read_link_map(link_map, limit):
    """From lld's link map, the functions with an input section of their own (`.text.<name>`), and (start, size,
    first symbol) of every input section of .text that is a whole object's .text (no function sections) of fewer
    than `limit` bytes and holds at least one symbol."""
    import re
    line_re = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+( +)(\S.*)$")
    own_section = re.compile(r":\(\.text\.(.+)\)$")
    sectioned, result, in_text, current = set(), [], False, None
    with open(link_map) as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            addr, size, indent, rest = int(m.group(1), 16), int(m.group(2), 16), len(m.group(3)), m.group(4)
            if indent <= 1:  # an output section
                in_text = rest == ".text"
                current = None
                continue
            if not in_text:
                continue
            if indent < 12:  # an input section: path:(name)
                current = (addr, size) if rest.endswith(":(.text)") and 0 < size < limit else None
                named = own_section.search(rest)
                if named:
                    sectioned.add(named.group(1))
            elif current is not None:  # the first symbol of a wanted input section
                result.append((current[0], current[1], rest.strip()))
                current = None
    return sectioned, result


def main():
    pid, binary = sys.argv[1], sys.argv[2]
    order = sys.argv[sys.argv.index("--order") + 1] if "--order" in sys.argv else None
    sectioned, small = None, []
    if "--map" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--whole-below") + 1]) if "--whole-below" in sys.argv else 65536
        sectioned, small = read_link_map(sys.argv[sys.argv.index("--map") + 1], limit)
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
    mapped_as = sys.argv[sys.argv.index("--mapped-as") + 1] if "--mapped-as" in sys.argv else None
    for off, perms in present_pages(pid, binary, mapped_as):
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

    def touched(addr, size):
        return any(pg in text_pages for pg in range(addr // PAGE, (addr + size - 1) // PAGE + 1))

    if order:
        chosen = []
        for addr, size, name in functions(binary):
            if sectioned is not None and name not in sectioned:
                continue
            if size and touched(addr, size):
                chosen.append((addr, size, name))
        whole = [(addr, size, name) for addr, size, name in small if touched(addr, size)]
        if "--map" in sys.argv:
            print(f"{len(whole)} whole objects without function sections ({sum(s for _, s, _ in whole) / 1048576:.1f} MiB) on resident .text pages")
        print(f"{len(chosen)} functions ({sum(s for _, s, _ in chosen) / 1048576:.1f} MiB) of their own sections on {len(text_pages)} resident .text pages -> {order}")
        with open(order, "w") as f:
            for _, _, name in sorted(chosen + whole):
                f.write(f"{name}\n")


main()
