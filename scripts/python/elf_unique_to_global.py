#!/usr/bin/env python3
"""Rewrites the STB_GNU_UNIQUE symbols of ELF64 shared libraries to STB_GLOBAL, in place.

glibc keeps one process-wide table of STB_GNU_UNIQUE symbols (C++ inline statics such as
c10::Dispatcher::singleton()::s) and binds every copy of such a symbol to the first one loaded, even
across libraries opened with RTLD_LOCAL. Two libtorch copies in one process then share a dispatcher and
the second aborts. As STB_GLOBAL the symbols stay private to the bundled copy's own RTLD_LOCAL tree.
Only the binding nibble of st_info changes: one byte per symbol, nothing moves.

    elf_unique_to_global.py LIBRARY...     # prints "LIBRARY: N symbols" for each
"""
import mmap
import struct
import sys

STB_GLOBAL, STB_GNU_UNIQUE = 1, 10
SHT_SYMTAB, SHT_DYNSYM = 2, 11
SYMBOL_SIZE = 24  # sizeof(Elf64_Sym)


def rewrite(path):
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), 0) as elf:
        if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
            raise SystemExit(f"{path}: not a little-endian ELF64 file")
        section_offset, = struct.unpack_from("<Q", elf, 0x28)
        entry_size, count = struct.unpack_from("<HH", elf, 0x3A)
        if entry_size != 64 or section_offset + count * entry_size > len(elf):
            raise SystemExit(f"{path}: damaged section header table")
        rewritten = 0
        for index in range(count):
            header = section_offset + index * entry_size
            kind, = struct.unpack_from("<I", elf, header + 4)
            if kind not in (SHT_SYMTAB, SHT_DYNSYM):
                continue
            offset, size = struct.unpack_from("<QQ", elf, header + 0x18)
            if offset + size > len(elf):
                raise SystemExit(f"{path}: symbol table past the end of the file")
            for symbol in range(offset, offset + size - SYMBOL_SIZE + 1, SYMBOL_SIZE):
                info = elf[symbol + 4]
                if info >> 4 == STB_GNU_UNIQUE:
                    elf[symbol + 4] = (STB_GLOBAL << 4) | (info & 0xF)
                    rewritten += kind == SHT_DYNSYM
        elf.flush()
    return rewritten


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for library in sys.argv[1:]:
        print(f"{library}: {rewrite(library)} STB_GNU_UNIQUE dynamic symbols made STB_GLOBAL")
