"""The cffi declarations of the C runtime, generated from the real headers (one source of truth).

Each `csrc/*.h` marks what Python may see with `/* cffi:begin */ ... /* cffi:end */` (whole
lines). `generate(paths)` extracts those sections, headers ordered so that a header's
`#include "x.h"` comes before it, and rewrites them into what `FFI.cdef()` accepts:

- `#define NAME <integer expression>` is evaluated (earlier macros may appear in it) and emitted
  with its value, so Python reads `lib.NAME` and cffi checks the value against the compiler's;
  an expression naming something outside the sections (`UINT32_MAX`) becomes `#define NAME ...`
  (the compiler supplies the value). `#include` lines are dropped.
- array sizes written with macros are replaced by their value, so structs are declared exactly
  as C lays them out;
- `static inline` functions are dropped (body included), as are `__attribute__((...))`,
  `restrict` and `_Atomic`;
- `/* cffi:extern "Python+C" */` before a prototype becomes `extern "Python+C"` (a callback
  cffi defines).

Anything else it cannot take (function-like macros, conditionals, a function body that is not
`static inline`, an array size it cannot evaluate) raises CdefError naming file:line.
"""
import ast
import os
import re

BEGIN = "/* cffi:begin */"
END = "/* cffi:end */"
EXTERN_PYTHON = '/* cffi:extern "Python+C" */'


class CdefError(Exception):
    """A header construct the cdef generator cannot translate; the message names file:line."""


_INT_LITERAL = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_EXPR_CHARS = re.compile(r"^[\w\s()+\-*/%<>|&^~]+$")
_DROP_WORDS = re.compile(r"\b(?:restrict|__restrict|__restrict__|_Atomic)\b")
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.LShift, ast.RShift,
        ast.BitOr, ast.BitAnd, ast.BitXor)


def _eval_int(expr, macros):
    """The value of a C integer constant expression over literals and known macros, or None."""
    text = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expr)
    text = _IDENT.sub(lambda m: str(macros[m.group(0)]) if m.group(0) in macros else m.group(0),
                      text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def ev(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPS):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
                if b == 0 or a < 0 or b < 0:
                    raise ValueError
                return a // b if not isinstance(node.op, ast.Mod) else a % b
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b,
                    ast.LShift: a << b if 0 <= b < 64 else None,
                    ast.RShift: a >> b if 0 <= b < 64 else None,
                    ast.BitOr: a | b, ast.BitAnd: a & b, ast.BitXor: a ^ b}[type(node.op)]
        raise ValueError

    try:
        value = ev(tree.body)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, int) else None


def _strip_comments(text, where):
    """Comments replaced by spaces, newlines kept (so line numbers stay)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise CdefError(f"{where(i)}: unterminated comment")
            out.append("".join(c if c == "\n" else " " for c in text[i:j + 2]))
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _drop_attributes(line, loc):
    """`line` without its __attribute__((...)) groups (balanced parentheses)."""
    while True:
        k = line.find("__attribute__")
        if k < 0:
            return line
        j = k + len("__attribute__")
        while j < len(line) and line[j].isspace():
            j += 1
        if j >= len(line) or line[j] != "(":
            raise CdefError(f"{loc}: __attribute__ without its (( )) on the same line")
        depth = 0
        for m in range(j, len(line)):
            depth += {"(": 1, ")": -1}.get(line[m], 0)
            if depth == 0:
                break
        else:
            raise CdefError(f"{loc}: __attribute__((...)) spanning lines is not supported")
        line = line[:k] + line[m + 1:]


def _sections(path):
    """[(first line number, [lines])] of the cffi sections of one header."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    name = os.path.basename(path)
    sections, start = [], None
    for n, line in enumerate(lines, 1):
        if line.strip() == BEGIN:
            if start is not None:
                raise CdefError(f"{name}:{n}: cffi:begin inside a cffi section (from line {start})")
            start = n
        elif line.strip() == END:
            if start is None:
                raise CdefError(f"{name}:{n}: cffi:end without cffi:begin")
            sections.append((start + 1, lines[start:n - 1]))
            start = None
        elif "/* cffi:begin" in line or "/* cffi:end" in line:
            raise CdefError(f"{name}:{n}: a cffi marker must be alone on its line, "
                            f"exactly {BEGIN} or {END}")
    if start is not None:
        raise CdefError(f"{name}:{start}: cffi:begin without cffi:end")
    return sections


def _translate(name, first, lines, macros):
    """One section's cdef text; `macros` collects the evaluated #defines."""
    text = "\n".join(lines).replace(EXTERN_PYTHON, 'extern "Python+C"')
    text = _strip_comments(text, lambda i: f"{name}:{first + text.count(chr(10), 0, i)}")
    out = []
    skip_depth = None           # brace depth while inside a dropped static inline body
    pending_inline = None       # line of a `static inline` whose body has not started yet
    depth = 0
    src = text.split("\n")
    n = 0
    while n < len(src):
        loc = f"{name}:{first + n}"
        line = src[n]
        while line.rstrip().endswith("\\") and n + 1 < len(src):
            n += 1
            line = line.rstrip()[:-1] + " " + src[n]
        n += 1
        stripped = line.strip()
        if skip_depth is None and pending_inline is None and stripped.startswith("#"):
            m = re.match(r"#\s*(\w+)\s*(.*)$", stripped)
            directive, rest = (m.group(1), m.group(2)) if m else ("", stripped)
            if directive == "include":
                continue
            if directive != "define":
                raise CdefError(f"{loc}: #{directive} inside a cffi section is not supported "
                                "(cffi sees no preprocessor; keep conditionals outside)")
            d = re.match(r"([A-Za-z_]\w*)(\(?)\s*(.*)$", rest)
            if not d or d.group(2):
                raise CdefError(f"{loc}: function-like or malformed macro "
                                f"{rest.split()[0] if rest else ''!r} cannot be declared to cffi")
            macro, value = d.group(1), d.group(3).strip()
            number = _eval_int(value, macros) if value else None
            if number is not None:
                macros[macro] = number
                out.append(f"#define {macro} {number}")
            elif value and _EXPR_CHARS.match(value):
                out.append(f"#define {macro} ...")
            else:
                raise CdefError(f"{loc}: macro {macro} = {value!r} is not an integer constant "
                                "expression cffi can declare")
            continue
        line = _DROP_WORDS.sub(" ", _drop_attributes(line, loc))
        if skip_depth is None and re.match(r"\s*static\s+inline\b", line):
            pending_inline = loc
        if pending_inline is not None or skip_depth is not None:
            for c in line:
                if c == "{":
                    depth += 1
                    if skip_depth is None:
                        skip_depth, pending_inline = depth - 1, None
                elif c == "}":
                    depth -= 1
                    if skip_depth is not None and depth == skip_depth:
                        skip_depth = None
            out.append("")
            continue
        if re.search(r"\)\s*\{", line) or (stripped == "{" and out and out[-1].rstrip()
                                            .endswith(")")):
            raise CdefError(f"{loc}: function body in a header (only static inline ones are "
                            "dropped); declare the prototype instead")
        depth += line.count("{") - line.count("}")

        def array_size(m, loc=loc):
            size = m.group(1).strip()
            if not size or size == "...":
                return m.group(0)
            value = _eval_int(size, macros)
            if value is None:
                raise CdefError(f"{loc}: array size [{size}] is not a constant the generator "
                                "can evaluate")
            return f"[{value}]"
        out.append(re.sub(r"\[([^\]]*)\]", array_size, line))
    if pending_inline is not None or skip_depth is not None:
        raise CdefError(f"{pending_inline or name}: static inline function not closed in its "
                        "cffi section")
    return "\n".join(out)


def _ordered(paths):
    """Headers with each one's local #includes first (cffi needs types before their use)."""
    by_name = {os.path.basename(p): p for p in paths}
    done, order = set(), []

    def visit(name, chain):
        if name in done:
            return
        if name in chain:
            raise CdefError(f"{name}: #include cycle {' -> '.join(chain + [name])}")
        with open(by_name[name], encoding="utf-8") as f:
            deps = re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M)
        for dep in deps:
            if dep in by_name:
                visit(dep, chain + [name])
        done.add(name)
        order.append(by_name[name])

    for name in sorted(by_name):
        visit(name, [])
    return order


def generate(paths):
    """The cdef text of every cffi section of the headers `paths`."""
    macros, parts = {}, []
    for path in _ordered(paths):
        name = os.path.basename(path)
        for first, lines in _sections(path):
            parts.append(f"/* {name}:{first} */\n" + _translate(name, first, lines, macros))
    return "\n".join(parts) + "\n"
