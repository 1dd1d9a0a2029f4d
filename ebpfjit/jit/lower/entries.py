"""The lowering's driver and entry points: `lower_program` creates one LLVM function per eBPF
function (the entry with the runner's signature, subprograms, pc 0's copy for bpf-to-bpf calls),
lowers each with `FunctionLowerer`, and adds the entries the runtime calls: `ebpf_entry`
versioned on the raw convention (`_versioned_entry`) and `ebpf_callback` (`_callback_entry`).

Must not import: ebpfjit.jit, ebpfjit.runtime (the layout arrives through LoweringContext).

Imports: ebpfjit.isa, ebpfjit.jit.lower.analysis, ebpfjit.jit.lower.cgutils,
    ebpfjit.jit.lower.function, ebpfjit.jit.lower.lowering_context
"""
from __future__ import annotations

from dataclasses import replace

from llvmlite import ir

from ...isa.insn import CALL_HELPER, CALL_LOCAL, Instruction
from ...isa.opcodes import Kind
from .analysis import ProgramInfo, analyze_program, callback_target, r1_mem_access, r2_compared
from .cgutils import byte_gep, const
from .function import EARLY_EXIT, FunctionLowerer
from .lowering_context import CALLBACK_NAME, ENTRY_NAME, ERR_HELPER, I1, I32, I64, PTR, LoweringContext


def lower_program(insns: list[Instruction], ctx: LoweringContext) -> ir.Module:
    """Lower a decoded program into `ctx.module`; the entry function is `ENTRY_NAME`."""
    prog = analyze_program(insns)
    module = ctx.module
    llfns = {}
    main = prog.functions[0]
    versioned = (ctx.options.bounds_checks and ctx.options.version_entry
                 and r1_mem_access(main, prog.insns) and r2_compared(main, prog.insns))
    # The raw copy also assumes env->helpers[1] is the built-in lookup (checked at entry), so
    # its inlined lookups have no generic-helper path that could move the mem region.
    lookups = versioned and any(
        prog.insns[pc].kind is Kind.CALL and prog.insns[pc].src == CALL_HELPER
        and prog.insns[pc].imm == 1 for pc in main.pcs)
    functions = list(prog.functions)
    if any(insn.kind is Kind.CALL and insn.src == CALL_LOCAL and insn.branch_target(pc) == 0
           for pc, insn in prog.insns.items()):
        functions.append(replace(main, called_copy=True, name=main.name + ".called"))
    for fn in functions:
        name = fn.name
        if fn.is_entry and versioned:
            fnty = ir.FunctionType(I32, [PTR, I64, I64, I64, I64] + [I1] * lookups)
            name = ENTRY_NAME + ".body"
        elif fn.is_entry:
            fnty = ir.FunctionType(I32, [PTR, I64, I64])
        else:
            fnty = ir.FunctionType(I64, [PTR] + [I64] * 5)
        llfn = ir.Function(module, fnty, name)
        llfn.attributes.add("nounwind")
        if not fn.is_entry or versioned:
            llfn.linkage = "internal"
        if fn.is_entry and versioned:
            llfn.attributes.add("alwaysinline")
        llfn.args[0].name = "st"
        for i, arg in enumerate(llfn.args[1:], start=1):
            arg.name = f"arg.r{i}"
        llfns[fn.key] = llfn
    for fn in functions:
        FunctionLowerer(ctx, prog, fn, llfns).lower()
    if versioned:
        _versioned_entry(ctx, llfns[0])
    # Without a `lddw rX, func` no callback pointer exists; a forged one runs interpreted.
    if any(callback_target(pc, insn) in prog.insns for pc, insn in prog.insns.items()):
        _callback_entry(ctx, prog, llfns)
    return module


def _callback_entry(ctx: LoweringContext, prog: ProgramInfo, llfns: dict[int, ir.Function]):
    """`uint64_t ebpf_callback(st, pc, r1..r5)` (ebpfjit_jit_callback_fn): runs the function at
    `pc` for ebpfjit_invoke_callback, which validated pc and counted the frame. A packet load
    that ends a callback early (EARLY_EXIT) ends just the callback, with r0 = 0 (interpreter)."""
    fn = ir.Function(ctx.module, ir.FunctionType(I64, [PTR] + [I64] * 6), CALLBACK_NAME)
    fn.attributes.add("nounwind")
    st, pc_arg = fn.args[0], fn.args[1]
    st.name, pc_arg.name = "st", "pc"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    bad = fn.append_basic_block("bad")
    switch = b.switch(pc_arg, bad)
    for start, callee in sorted((k, f) for k, f in llfns.items() if isinstance(k, int)):
        if start == 0:
            continue
        block = fn.append_basic_block(f"pc{start}")
        switch.add_case(const(I64, start), block)
        b.position_at_end(block)
        r0 = b.call(callee, [st] + list(fn.args[2:]))
        status_ptr = byte_gep(b, st, ctx.field_offset("status"))
        status = b.load(status_ptr, typ=I32, align=4)
        early = b.icmp_unsigned("==", status, const(I32, EARLY_EXIT))
        with b.if_then(early):
            b.store(const(I32, 0), status_ptr, align=4)
            b.store(const(I64, 0), byte_gep(b, st, ctx.field_offset("r0")), align=8)
        b.ret(b.select(early, const(I64, 0), r0))
    b.position_at_end(bad)
    b.call(ctx.runtime_fn("ebpfjit_fault"), [st, const(I32, ERR_HELPER), ir.Constant(I32, -1),
                                             const(I64, 0), const(I64, 0)])
    b.ret(const(I64, 0))


def _versioned_entry(ctx: LoweringContext, body: ir.Function) -> None:
    """`ebpf_entry(st, r1, r2)`: when r1/r2 are the mem region (the raw convention: base and
    length), call the body with the region given as r1/r2 themselves, so LLVM can relate the
    program's own length checks to the bounds checks (and drop them); otherwise with the
    region loaded from st. The body is always inlined: two specialised copies."""
    fn = ir.Function(ctx.module, ir.FunctionType(I32, [PTR, I64, I64]), ENTRY_NAME)
    fn.attributes.add("nounwind")
    st, r1, r2 = fn.args
    st.name, r1.name, r2.name = "st", "arg.r1", "arg.r2"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    base = b.load(byte_gep(b, st, ctx.field_offset("mem_base")), typ=I64, align=8)
    length = b.load(byte_gep(b, st, ctx.field_offset("mem_len")), typ=I64, align=8)
    raw = b.and_(b.icmp_unsigned("==", r1, base), b.icmp_unsigned("==", r2, length))
    extra_fast, extra_slow = [], []
    if len(body.args) == 6:
        # is env->helpers[1] the built-in map lookup (env may be NULL)?
        env = b.load(byte_gep(b, st, ctx.field_offset("env")), typ=PTR, align=8)
        start = b.block
        has_env = fn.append_basic_block("env")
        joined = fn.append_basic_block("env.done")
        b.cbranch(b.icmp_unsigned("!=", b.ptrtoint(env, I64), const(I64, 0)), has_env, joined)
        b.position_at_end(has_env)
        helper = b.load(byte_gep(b, env, ctx.layout.env_helpers + 8), typ=PTR, align=8)
        builtin = ctx.runtime_fn("ebpfjit_helper_map_lookup_elem")
        same = b.icmp_unsigned("==", b.ptrtoint(helper, I64), b.ptrtoint(builtin, I64))
        b.branch(joined)
        b.position_at_end(joined)
        is_builtin = b.phi(I1, name="builtin.lookup")
        is_builtin.add_incoming(const(I1, 0), start)
        is_builtin.add_incoming(same, has_env)
        raw = b.and_(raw, is_builtin)
        extra_fast, extra_slow = [const(I1, 1)], [is_builtin]
    fast = fn.append_basic_block("raw")
    slow = fn.append_basic_block("general")
    b.cbranch(raw, fast, slow)
    b.position_at_end(fast)
    b.ret(b.call(body, [st, r1, r2, r1, r2] + extra_fast))
    b.position_at_end(slow)
    # The general copy is a function of its own (noinline, tail-called): its slow paths
    # (ebpfjit_access_ok calls) then do not make the raw copy save callee-saved registers.
    general = ir.Function(ctx.module, body.function_type, ENTRY_NAME + ".general")
    general.attributes.add("nounwind")
    general.attributes.add("noinline")
    # Taken only when the run is not in the raw convention (r1/r2 overridden) or helper 1 is
    # replaced: smaller code (less unrolling) there saves ~7% of the compile time.
    general.attributes.add("optsize")
    general.linkage = "internal"
    gb = ir.IRBuilder(general.append_basic_block("entry"))
    gb.ret(gb.call(body, list(general.args)))
    b.ret(b.call(general, [st, r1, r2, base, length] + extra_slow, tail=True))
