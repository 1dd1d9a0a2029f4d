/* interp.c: the eBPF interpreter (kernel / RFC 9669 semantics, bit-exact).
 *
 * ebpfjit_interp_prepare() predecodes the bytecode once into one 32-byte record per instruction
 * (lddw is one record) holding the handler's label address (direct threading with GNU computed
 * gotos), operands with the immediate already extended the way the opcode uses it, and jump /
 * call targets resolved to record pointers. Each function (pc 0 and every local-call target) is
 * followed by a FALL_OFF sentinel record, so running past a function's end needs no check on
 * the hot path. Everything an instruction could do wrong (bad target, unknown opcode or form) is
 * resolved at prepare time to a faulting handler, so arbitrary bytecode can never make the
 * interpreter read outside its tables.
 *
 * Memory accesses are checked inline against the current frame and the mem region, then out of
 * line by ebpfjit_access_ok (all frames, run and env regions). See runtime_api.h for the
 * conventions (budget, helper faults, fall-off pc) the JIT follows too.
 */
#include <stdlib.h>
#include <string.h>

#include "ebpfjit_opcodes.h"
#include "ebpfjit_rt.h"
#include "runtime_api.h"

struct ix {
    const void *label;
    uint64_t imm;               /* extended as the opcode uses it; lddw: the 64-bit value */
    const struct ix *tgt;       /* jump / local-call target */
    int32_t pc;
    int16_t off;
    uint8_t dst, src;
};
_Static_assert(sizeof(struct ix) == 32, "records should stay 32 bytes");

struct interp {
    uint32_t nrecs;
    uint32_t nslots;
    const struct ix **callable;     /* per slot: the record of a callback target, or NULL */
    uint32_t *charge;               /* per slot: instructions a segment ending there costs */
    struct ix recs[];
};

#define CONDS(X) X(JEQ) X(JGT) X(JGE) X(JSET) X(JNE) X(JSGT) X(JSGE) X(JLT) X(JLE) X(JSLT) X(JSLE)
#define JVARIANTS(C) C##64K, C##64X, C##32K, C##32X, C##64K_B, C##64X_B, C##32K_B, C##32X_B,
#define ALUOPS(X) X(ADD) X(SUB) X(MUL) X(DIV) X(SDIV) X(MOD) X(SMOD) X(OR) X(AND) X(LSH) \
                  X(RSH) X(ARSH) X(XOR) X(MOV)
#define AVARIANTS(O) O##64K, O##64X, O##32K, O##32X,

#define OTHER_HANDLERS(X)                                                                     \
    X(NEG64) X(NEG32) X(MOVSX64_8) X(MOVSX64_16) X(MOVSX64_32) X(MOVSX32_8) X(MOVSX32_16)     \
    X(LE16) X(LE32) X(LE64) X(BE16) X(BE32) X(BE64)                                            \
    X(JA) X(JA_B) X(CALL_HELPER) X(CALL_UNKNOWN) X(CALL_LOCAL) X(CALLX) X(EXIT)                \
    X(LDDW) X(LDDW_MAP) X(LDDW_MAPVAL)                                                         \
    X(LDABS_B) X(LDABS_H) X(LDABS_W) X(LDIND_B) X(LDIND_H) X(LDIND_W)                          \
    X(LDX_B) X(LDX_H) X(LDX_W) X(LDX_DW) X(LDXS_B) X(LDXS_H) X(LDXS_W)                         \
    X(ST_B) X(ST_H) X(ST_W) X(ST_DW) X(STX_B) X(STX_H) X(STX_W) X(STX_DW)                      \
    X(A64_ADD) X(A64_OR) X(A64_AND) X(A64_XOR) X(A64_FADD) X(A64_FOR) X(A64_FAND) X(A64_FXOR)  \
    X(A64_XCHG) X(A64_CMPXCHG)                                                                 \
    X(A32_ADD) X(A32_OR) X(A32_AND) X(A32_XOR) X(A32_FADD) X(A32_FOR) X(A32_FAND) X(A32_FXOR)  \
    X(A32_XCHG) X(A32_CMPXCHG)                                                                 \
    X(FALL_OFF) X(BAD_INSN) X(BAD_TARGET) X(CHARGE) X(FRAME_OOB_LD) X(FRAME_OOB_ST)

#define ENUM_ONE(n) H_##n,
#define ENUM_J(C) H_##C##64K, H_##C##64X, H_##C##32K, H_##C##32X, \
                  H_##C##64K_B, H_##C##64X_B, H_##C##32K_B, H_##C##32X_B,
#define ENUM_A(O) H_##O##64K, H_##O##64X, H_##O##32K, H_##O##32X,
enum handler {
    ALUOPS(ENUM_A)
    CONDS(ENUM_J)
    OTHER_HANDLERS(ENUM_ONE)
    H_COUNT
};

static int32_t interp_core(const struct interp *ipg, struct ebpfjit_state *st,
                           const struct ix *start, uint32_t base, const void *const **labels_out,
                           uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

/* --- prepare --- */

static const void *const *handler_labels(void)
{
    static const void *const *labels;
    if (!labels)
        interp_core(NULL, NULL, NULL, 0, &labels, 0, 0, 0, 0, 0);
    return labels;
}

static int alu_handler(uint8_t opcode, int16_t off, int32_t imm)
{
    int is64 = (opcode & EBPFJIT_MASK_CLASS) == EBPFJIT_CLASS_ALU64;
    int x = (opcode & EBPFJIT_MASK_SRC) == EBPFJIT_SRC_X;
    int op = opcode & EBPFJIT_MASK_OP;
    int base;
    switch (op) {
    case EBPFJIT_ALU_ADD: base = H_ADD64K; break;
    case EBPFJIT_ALU_SUB: base = H_SUB64K; break;
    case EBPFJIT_ALU_MUL: base = H_MUL64K; break;
    case EBPFJIT_ALU_DIV: base = off == EBPFJIT_SIGNED_OFF ? H_SDIV64K : off == 0 ? H_DIV64K : -1;
        break;
    case EBPFJIT_ALU_OR: base = H_OR64K; break;
    case EBPFJIT_ALU_AND: base = H_AND64K; break;
    case EBPFJIT_ALU_LSH: base = H_LSH64K; break;
    case EBPFJIT_ALU_RSH: base = H_RSH64K; break;
    case EBPFJIT_ALU_NEG:
        if (x || off || imm)
            return H_BAD_INSN;
        return is64 ? H_NEG64 : H_NEG32;
    case EBPFJIT_ALU_MOD: base = off == EBPFJIT_SIGNED_OFF ? H_SMOD64K : off == 0 ? H_MOD64K : -1;
        break;
    case EBPFJIT_ALU_XOR: base = H_XOR64K; break;
    case EBPFJIT_ALU_MOV:
        if (off && !x)
            return H_BAD_INSN;
        if (off == 8) return is64 ? H_MOVSX64_8 : H_MOVSX32_8;
        if (off == 16) return is64 ? H_MOVSX64_16 : H_MOVSX32_16;
        if (off == 32 && is64) return H_MOVSX64_32;
        base = off == 0 ? H_MOV64K : -1;
        break;
    case EBPFJIT_ALU_ARSH: base = H_ARSH64K; break;
    case EBPFJIT_ALU_END:
        if (opcode == EBPFJIT_OP_LE)
            return imm == 16 ? H_LE16 : imm == 32 ? H_LE32 : imm == 64 ? H_LE64 : H_BAD_INSN;
        /* be on a little-endian host == bswap */
        if (opcode == EBPFJIT_OP_BE || opcode == EBPFJIT_OP_BSWAP)
            return imm == 16 ? H_BE16 : imm == 32 ? H_BE32 : imm == 64 ? H_BE64 : H_BAD_INSN;
        return H_BAD_INSN;
    default:
        return H_BAD_INSN;
    }
    if (base < 0 || (off && op != EBPFJIT_ALU_DIV && op != EBPFJIT_ALU_MOD))
        return H_BAD_INSN;
    return base + (is64 ? 0 : 2) + x;
}

static int jmp_handler(uint8_t opcode, int back)
{
#define COND(op) [EBPFJIT_JMP_##op >> 4] = H_##op##64K
    static const int conds[16] = {
        COND(JEQ), COND(JGT), COND(JGE), COND(JSET), COND(JNE), COND(JSGT), COND(JSGE),
        COND(JLT), COND(JLE), COND(JSLT), COND(JSLE),
    };
#undef COND
    int base = conds[(opcode & EBPFJIT_MASK_OP) >> 4];
    if (!base)
        return H_BAD_INSN;
    return base + ((opcode & EBPFJIT_MASK_CLASS) == EBPFJIT_CLASS_JMP32 ? 2 : 0) +
           ((opcode & EBPFJIT_MASK_SRC) == EBPFJIT_SRC_X ? 1 : 0) + (back ? 4 : 0);
}

static int atomic_handler(int is64, int32_t imm)
{
    int base = is64 ? H_A64_ADD : H_A32_ADD;
    switch (imm) {
    case EBPFJIT_ATOMIC_ADD: return base + 0;
    case EBPFJIT_ATOMIC_OR: return base + 1;
    case EBPFJIT_ATOMIC_AND: return base + 2;
    case EBPFJIT_ATOMIC_XOR: return base + 3;
    case EBPFJIT_ATOMIC_ADD | EBPFJIT_ATOMIC_FETCH: return base + 4;
    case EBPFJIT_ATOMIC_OR | EBPFJIT_ATOMIC_FETCH: return base + 5;
    case EBPFJIT_ATOMIC_AND | EBPFJIT_ATOMIC_FETCH: return base + 6;
    case EBPFJIT_ATOMIC_XOR | EBPFJIT_ATOMIC_FETCH: return base + 7;
    case EBPFJIT_ATOMIC_XCHG: return base + 8;
    case EBPFJIT_ATOMIC_CMPXCHG: return base + 9;
    default: return H_BAD_INSN;
    }
}

struct raw {
    uint8_t opcode, dst, src;
    int16_t off;
    int32_t imm;
};

static int is_load_handler(int h)
{
    return h >= H_LDX_B && h <= H_LDXS_W;
}

static int is_store_handler(int h)
{
    return (h >= H_ST_B && h <= H_STX_DW) || (h >= H_A64_ADD && h <= H_A32_CMPXCHG);
}

/* An access whose base register is r10 itself addresses this frame at a fixed offset (the
 * decoder rejects every write to r10): outside [r10 - 512, r10) it is out of bounds whatever
 * lies there, as the kernel verifier rejects it ("invalid stack off"). Resolved here, so that
 * a callee's [r10 + 0] never reaches a caller's frame that happens to be adjacent (the JIT's
 * frames are not laid out as these are). x->imm becomes the access size. */
static int frame_oob_handler(int h, const struct raw *r, struct ix *x)
{
    uint8_t base = is_load_handler(h) ? r->src : r->dst;
    static const uint8_t sizes[4] = {
        [EBPFJIT_SIZE_W >> 3] = 4, [EBPFJIT_SIZE_H >> 3] = 2, [EBPFJIT_SIZE_B >> 3] = 1,
        [EBPFJIT_SIZE_DW >> 3] = 8,
    };
    int64_t size;

    if ((!is_load_handler(h) && !is_store_handler(h)) || base != 10)
        return h;
    size = sizes[(r->opcode & EBPFJIT_MASK_SIZE) >> 3];
    if (r->off >= -EBPFJIT_STACK_SIZE && r->off + size <= 0)
        return h;
    x->imm = (uint64_t)size;
    return is_load_handler(h) ? H_FRAME_OOB_LD : H_FRAME_OOB_ST;
}

static struct raw raw_at(const uint8_t *code, uint32_t pc)
{
    const uint8_t *p = code + (size_t)pc * 8;
    struct raw r;
    r.opcode = p[0];
    r.dst = p[1] & 0xf;
    r.src = p[1] >> 4;
    memcpy(&r.off, p + 2, 2);
    memcpy(&r.imm, p + 4, 4);
    return r;
}

/* The instruction budget (runtime_api.h, the same computation as ebpfjit/lower/budget.py):
 * the code between two charge points is a forward-only segment, which starts at a function
 * entry, a loop header (back-edge target) or a local call's return point. acc[pc] is the most
 * instructions a segment can have executed before slot pc (the longest forward path); a local
 * call, an exit and every edge into a loop header (the _B jump variants, and the CHARGE record
 * the fallthrough into a header passes) cost charge[pc] = acc[pc] + 1. Slots are visited in
 * order and every forward edge goes to a later slot, so one pass suffices. */
static int ends_always(int h)
{
    return h == H_CALL_LOCAL || h == H_EXIT;
}

struct segments {
    uint32_t *acc, *charge;
    const uint8_t *is_func, *is_head;
    const uint32_t *pc2rec;
    struct ix *recs;
};

static void segment_reach(const struct segments *sg, uint32_t pc, uint32_t target,
                          uint32_t here, int fallthrough)
{
    if (sg->is_head[target]) {
        sg->charge[pc] = here;
        if (fallthrough && !sg->is_func[target])
            sg->recs[sg->pc2rec[target] - 1].imm = here;   /* its CHARGE record */
    } else if (!sg->is_func[target] && sg->acc[target] < here) {
        sg->acc[target] = here;
    }
}

static void segment_step(const struct segments *sg, uint32_t pc, int h, int64_t t,
                         uint32_t width)
{
    uint32_t here = sg->acc[pc] + 1;
    int jump = h == H_JA || h == H_JA_B, cond = 0;

#define IS_COND(C) || (h >= H_##C##64K && h <= H_##C##32X_B)
    cond = 0 CONDS(IS_COND);
#undef IS_COND
    if (ends_always(h)) {
        sg->charge[pc] = here;
        return;
    }
    if (jump || cond)
        segment_reach(sg, pc, (uint32_t)t, here, 0);
    if (!jump)
        segment_reach(sg, pc, pc + width, here, 1);
}

int ebpfjit_interp_prepare(struct ebpfjit_prog *prog)
{
    const void *const *labels = handler_labels();
    uint32_t n = prog->nslots, pc, nfunc = 0, nrecs = 0, k;
    uint8_t *is_start = NULL, *is_func = NULL, *is_head = NULL;
    uint32_t *pc2rec = NULL, *acc = NULL;
    struct segments sg;
    struct interp *ipg = NULL;
    int rc = -1;

    ebpfjit_interp_release(prog);
    if (!prog->code && n)
        return -1;
    is_start = calloc(n + 1, 1);
    is_func = calloc(n + 1, 1);
    is_head = calloc(n + 1, 1);
    pc2rec = malloc((n + 1) * sizeof(*pc2rec));
    if (!is_start || !is_func || !is_head || !pc2rec)
        goto out;
    for (pc = 0; pc < n; pc++) {
        struct raw r = raw_at(prog->code, pc);
        is_start[pc] = 1;
        if (r.opcode == EBPFJIT_OP_LD_DW_IMM && pc + 1 < n)
            pc++;
    }
    is_func[0] = 1;
    for (pc = 0; pc < n; pc++) {
        struct raw r;
        int64_t t;
        int cls;
        if (!is_start[pc])
            continue;
        r = raw_at(prog->code, pc);
        t = (int64_t)pc + 1 + r.imm;
        /* Functions: local-call targets and callback targets (lddw src=4). */
        if (((r.opcode == EBPFJIT_OP_CALL && r.src == EBPFJIT_PSEUDO_CALL) ||
             (r.opcode == EBPFJIT_OP_LD_DW_IMM && r.src == EBPFJIT_PSEUDO_FUNC)) &&
            t >= 0 && t < n && is_start[t])
            is_func[t] = 1;
        /* Loop headers: targets of backward jumps (ja: off, gotol: imm; jcond: off). */
        cls = r.opcode & EBPFJIT_MASK_CLASS;
        if ((cls == EBPFJIT_CLASS_JMP || cls == EBPFJIT_CLASS_JMP32) &&
            r.opcode != EBPFJIT_OP_CALL && r.opcode != EBPFJIT_OP_CALLX &&
            r.opcode != EBPFJIT_OP_EXIT) {
            t = (int64_t)pc + 1 + (r.opcode == EBPFJIT_OP_JA32 ? r.imm : r.off);
            if (t >= 0 && t <= (int64_t)pc && is_start[t])
                is_head[t] = 1;
        }
    }
    for (pc = 0; pc < n; pc++) {
        nrecs += is_start[pc];
        nfunc += is_func[pc];
        /* A CHARGE record before each loop header: the fallthrough into it charges there. */
        nrecs += is_start[pc] && is_head[pc] && !is_func[pc];
    }
    if (!n)
        nfunc = 1;
    nrecs += nfunc;
    ipg = calloc(1, sizeof(*ipg) + (size_t)nrecs * sizeof(struct ix));
    if (!ipg)
        goto out;
    ipg->nrecs = nrecs;
    ipg->nslots = n;
    ipg->callable = calloc(n + 1, sizeof(*ipg->callable));
    ipg->charge = calloc(n + 1, sizeof(*ipg->charge));
    acc = calloc(n + 2, sizeof(*acc));
    if (!ipg->callable || !ipg->charge || !acc)
        goto out;

    /* Lay out records: each function's instructions, then its FALL_OFF sentinel. */
    k = 0;
    {
        int32_t last_pc = 0;
        for (pc = 0; pc < n; pc++) {
            if (is_func[pc] && pc != 0) {
                ipg->recs[k].label = labels[H_FALL_OFF];
                ipg->recs[k++].pc = last_pc;
            }
            if (!is_start[pc])
                continue;
            if (is_head[pc] && !is_func[pc]) {
                ipg->recs[k].label = labels[H_CHARGE];   /* imm: set by segment_step */
                ipg->recs[k++].pc = last_pc;
            }
            pc2rec[pc] = k;
            ipg->recs[k++].pc = (int32_t)pc;
            last_pc = (int32_t)pc;
        }
        ipg->recs[k].label = labels[H_FALL_OFF];
        ipg->recs[k++].pc = last_pc;
    }
    if (k != nrecs)
        goto out;
    sg.acc = acc;
    sg.charge = ipg->charge;
    sg.is_func = is_func;
    sg.is_head = is_head;
    sg.pc2rec = pc2rec;
    sg.recs = ipg->recs;

    for (pc = 0; pc < n; pc++) {
        struct ix *x;
        struct raw r;
        int h = H_BAD_INSN;
        int64_t t = 0;
        int cls;
        if (!is_start[pc])
            continue;
        x = &ipg->recs[pc2rec[pc]];
        r = raw_at(prog->code, pc);
        x->dst = r.dst;
        x->src = r.src;
        x->off = r.off;
        x->imm = (uint64_t)(int64_t)r.imm;
        cls = r.opcode & EBPFJIT_MASK_CLASS;
        if (r.dst > 10 || (r.src > 10 && r.opcode != EBPFJIT_OP_LD_DW_IMM)) {
            x->dst = x->src = 0;
            x->label = labels[H_BAD_INSN];
            continue;
        }
        switch (cls) {
        case EBPFJIT_CLASS_ALU:
        case EBPFJIT_CLASS_ALU64:
            h = alu_handler(r.opcode, r.off, r.imm);
            if (cls == EBPFJIT_CLASS_ALU)
                x->imm = (uint32_t)r.imm;
            break;
        case EBPFJIT_CLASS_JMP:
        case EBPFJIT_CLASS_JMP32:
            if ((r.opcode & EBPFJIT_MASK_OP) == EBPFJIT_JMP_JA) {
                if (r.opcode == EBPFJIT_OP_JA || r.opcode == EBPFJIT_OP_JA32) {
                    t = (int64_t)pc + 1 + (r.opcode == EBPFJIT_OP_JA ? r.off : r.imm);
                    h = t <= (int64_t)pc || (t < n && is_head[t]) ? H_JA_B : H_JA;
                    goto target;
                }
                break;
            }
            if (r.opcode == EBPFJIT_OP_CALL) {
                if (r.src == EBPFJIT_PSEUDO_HELPER_CALL) {
                    h = r.imm >= 0 && r.imm < EBPFJIT_MAX_HELPERS ? H_CALL_HELPER : H_CALL_UNKNOWN;
                } else if (r.src == EBPFJIT_PSEUDO_CALL) {
                    h = H_CALL_LOCAL;
                    t = (int64_t)pc + 1 + r.imm;
                    goto target;
                }
                break;
            }
            if (r.opcode == EBPFJIT_OP_CALLX) {
                h = H_CALLX;
                break;
            }
            if (r.opcode == EBPFJIT_OP_EXIT) {
                h = H_EXIT;
                break;
            }
            if ((r.opcode & EBPFJIT_MASK_OP) == EBPFJIT_JMP_CALL ||
                (r.opcode & EBPFJIT_MASK_OP) == EBPFJIT_JMP_EXIT ||
                (r.opcode & EBPFJIT_MASK_OP) > EBPFJIT_JMP_JSLE)
                break;
            t = (int64_t)pc + 1 + r.off;
            h = jmp_handler(r.opcode, t <= (int64_t)pc || (t >= 0 && t < n && is_head[t]));
            if (cls == EBPFJIT_CLASS_JMP32)
                x->imm = (uint32_t)r.imm;
target:
            if (h != H_BAD_INSN) {
                if (t < 0 || t >= n || !is_start[t])
                    h = H_BAD_TARGET;
                else
                    x->tgt = &ipg->recs[pc2rec[t]];
            }
            break;
        case EBPFJIT_CLASS_LD:
            if (r.opcode == EBPFJIT_OP_LD_DW_IMM) {
                if (pc + 1 >= n)
                    break;
                struct raw r2 = raw_at(prog->code, pc + 1);
                x->imm = ((uint64_t)(uint32_t)r2.imm << 32) | (uint32_t)r.imm;
                /* The loader leaves map_fd / map_value forms holding the env's map index. */
                if (r.src == 0)
                    h = H_LDDW;
                else if (r.src == EBPFJIT_PSEUDO_MAP_FD)
                    h = H_LDDW_MAP;
                else if (r.src == EBPFJIT_PSEUDO_MAP_VALUE)
                    h = H_LDDW_MAPVAL;
                else if (r.src == EBPFJIT_PSEUDO_FUNC) {
                    /* A callback: the value names the function (EBPFJIT_CALLBACK_TAG). */
                    t = (int64_t)pc + 1 + r.imm;
                    if (t >= 0 && t < n && is_start[t]) {
                        x->imm = EBPFJIT_CALLBACK_TAG | (uint64_t)t;
                        h = H_LDDW;
                    }
                }
                break;
            }
            switch (r.opcode) {
            case EBPFJIT_OP_LD_ABS_B: h = H_LDABS_B; break;
            case EBPFJIT_OP_LD_ABS_H: h = H_LDABS_H; break;
            case EBPFJIT_OP_LD_ABS_W: h = H_LDABS_W; break;
            case EBPFJIT_OP_LD_IND_B: h = H_LDIND_B; break;
            case EBPFJIT_OP_LD_IND_H: h = H_LDIND_H; break;
            case EBPFJIT_OP_LD_IND_W: h = H_LDIND_W; break;
            }
            break;
        case EBPFJIT_CLASS_LDX:
            switch (r.opcode) {
            case EBPFJIT_OP_LD_B_REG: h = H_LDX_B; break;
            case EBPFJIT_OP_LD_H_REG: h = H_LDX_H; break;
            case EBPFJIT_OP_LD_W_REG: h = H_LDX_W; break;
            case EBPFJIT_OP_LD_DW_REG: h = H_LDX_DW; break;
            case EBPFJIT_OP_LDSX_B_REG: h = H_LDXS_B; break;
            case EBPFJIT_OP_LDSX_H_REG: h = H_LDXS_H; break;
            case EBPFJIT_OP_LDSX_W_REG: h = H_LDXS_W; break;
            }
            break;
        case EBPFJIT_CLASS_ST:
            switch (r.opcode) {
            case EBPFJIT_OP_ST_B_IMM: h = H_ST_B; break;
            case EBPFJIT_OP_ST_H_IMM: h = H_ST_H; break;
            case EBPFJIT_OP_ST_W_IMM: h = H_ST_W; break;
            case EBPFJIT_OP_ST_DW_IMM: h = H_ST_DW; break;
            }
            break;
        case EBPFJIT_CLASS_STX:
            switch (r.opcode) {
            case EBPFJIT_OP_ST_B_REG: h = H_STX_B; break;
            case EBPFJIT_OP_ST_H_REG: h = H_STX_H; break;
            case EBPFJIT_OP_ST_W_REG: h = H_STX_W; break;
            case EBPFJIT_OP_ST_DW_REG: h = H_STX_DW; break;
            case EBPFJIT_OP_ATOMIC32: h = atomic_handler(0, r.imm); break;
            case EBPFJIT_OP_ATOMIC64: h = atomic_handler(1, r.imm); break;
            }
            break;
        }
        if (h == H_BAD_INSN)
            x->imm = r.opcode;   /* reported as fault_info */
        else
            h = frame_oob_handler(h, &r, x);
        x->label = labels[h];
        segment_step(&sg, pc, h, t, r.opcode == EBPFJIT_OP_LD_DW_IMM && pc + 1 < n ? 2 : 1);
    }
    for (pc = 1; pc < n; pc++)
        if (is_func[pc])
            ipg->callable[pc] = &ipg->recs[pc2rec[pc]];
    prog->interp = ipg;
    ipg = NULL;
    rc = 0;
out:
    if (ipg)
        free(ipg->callable), free(ipg->charge);
    free(ipg);
    free(acc);
    free(is_start);
    free(is_func);
    free(is_head);
    free(pc2rec);
    return rc;
}

void ebpfjit_interp_release(struct ebpfjit_prog *prog)
{
    if (prog->interp) {
        free(((struct interp *)prog->interp)->callable);
        free(((struct interp *)prog->interp)->charge);
    }
    free(prog->interp);
    prog->interp = NULL;
}

int32_t ebpfjit_interp_exec(struct ebpfjit_prog *prog, struct ebpfjit_state *st, uint64_t r1,
                            uint64_t r2)
{
    if (!prog->interp) {
        ebpfjit_fault(st, EBPFJIT_ERR_BAD_INSN, 0, 0, 0);
        return EBPFJIT_ERR_BAD_INSN;
    }
    const struct interp *ipg = prog->interp;
    /* Arguments by value: an args array written as 8-byte stores and read back as 16-byte
     * loads stalled every run on a failed store-to-load forward. */
    return interp_core(ipg, st, ipg->recs, 0, NULL, r1, r2, 0, 0, 0);
}

int ebpfjit_interp_is_callback(const struct ebpfjit_prog *prog, uint32_t pc)
{
    const struct interp *ipg = prog->interp;
    return ipg && pc < ipg->nslots && ipg->callable[pc] != NULL;
}

uint64_t ebpfjit_interp_call(struct ebpfjit_prog *prog, struct ebpfjit_state *st, uint32_t pc,
                             uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    const struct interp *ipg = prog->interp;

    if (!ebpfjit_interp_is_callback(prog, pc) || st->depth < 1 ||
        st->depth > EBPFJIT_MAX_FRAMES) {
        ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, 0, 0);
        st->fault_info = EBPFJIT_CALLBACK_TAG | pc;
        return 0;
    }
    /* ebpfjit_invoke_callback already counted the new frame: it is frame depth - 1. */
    if (interp_core(ipg, st, ipg->callable[pc], st->depth - 1, NULL, r1, r2, r3, r4, r5) !=
        EBPFJIT_OK)
        return 0;
    return st->r0;
}

/* --- the interpreter proper --- */

struct frame_save {
    const struct ix *ret;
    uint64_t r6, r7, r8, r9;
};

static inline uint64_t ld8(uint64_t a) { uint8_t v; memcpy(&v, (void *)(uintptr_t)a, 1); return v; }
static inline uint64_t ld16(uint64_t a) { uint16_t v; memcpy(&v, (void *)(uintptr_t)a, 2); return v; }
static inline uint64_t ld32(uint64_t a) { uint32_t v; memcpy(&v, (void *)(uintptr_t)a, 4); return v; }
static inline uint64_t ld64(uint64_t a) { uint64_t v; memcpy(&v, (void *)(uintptr_t)a, 8); return v; }
static inline void st8(uint64_t a, uint64_t v) { uint8_t x = (uint8_t)v; memcpy((void *)(uintptr_t)a, &x, 1); }
static inline void st16(uint64_t a, uint64_t v) { uint16_t x = (uint16_t)v; memcpy((void *)(uintptr_t)a, &x, 2); }
static inline void st32(uint64_t a, uint64_t v) { uint32_t x = (uint32_t)v; memcpy((void *)(uintptr_t)a, &x, 4); }
static inline void st64(uint64_t a, uint64_t v) { memcpy((void *)(uintptr_t)a, &v, 8); }

/* Atomics on a misaligned address would be split locks (fatal on some kernels); the kernel
 * verifier rejects them, so there we only promise the arithmetic, not atomicity. */
#define ATOMIC_RMW(T, fn, addr, v)                                                            \
    ({                                                                                        \
        T old_, v_ = (T)(v);                                                                  \
        if (((addr) & (sizeof(T) - 1)) == 0) {                                                \
            old_ = fn((T *)(uintptr_t)(addr), v_, __ATOMIC_SEQ_CST);                          \
        } else {                                                                              \
            memcpy(&old_, (void *)(uintptr_t)(addr), sizeof(T));                              \
            T new_ = ATOMIC_OP_##fn(old_, v_);                                                \
            memcpy((void *)(uintptr_t)(addr), &new_, sizeof(T));                              \
        }                                                                                     \
        old_;                                                                                 \
    })
#define ATOMIC_OP___atomic_fetch_add(a, b) ((a) + (b))
#define ATOMIC_OP___atomic_fetch_or(a, b) ((a) | (b))
#define ATOMIC_OP___atomic_fetch_and(a, b) ((a) & (b))
#define ATOMIC_OP___atomic_fetch_xor(a, b) ((a) ^ (b))
#define ATOMIC_OP___atomic_exchange_n(a, b) (b)

/* Zeroes one 512-byte frame with 16-byte stores: GCC expands a constant 512-byte memset into
 * `rep stos`, whose start-up cost was half of an empty run (perf, znver3). */
static inline __attribute__((always_inline)) void zero_frame(uint8_t *frame)
{
    typedef uint64_t v2u64 __attribute__((vector_size(16), may_alias));
    v2u64 *q = (v2u64 *)(void *)frame;
    const v2u64 z = {0, 0};
    int i;

#pragma GCC unroll 32
    for (i = 0; i < EBPFJIT_STACK_SIZE / 16; i++)
        q[i] = z;
}

/* Runs from `start` with r1..r5 as frame `base` (0: the program; a callback: the frame its
 * caller counted), returning at the exit of that frame. */
static int32_t interp_core(const struct interp *ipg, struct ebpfjit_state *st,
                           const struct ix *start, uint32_t base, const void *const **labels_out,
                           uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
#define LABEL_ONE(n) [H_##n] = &&L_##n,
#define LABEL_J(C) [H_##C##64K] = &&L_##C##64K, [H_##C##64X] = &&L_##C##64X,                 \
                   [H_##C##32K] = &&L_##C##32K, [H_##C##32X] = &&L_##C##32X,                 \
                   [H_##C##64K_B] = &&L_##C##64K_B, [H_##C##64X_B] = &&L_##C##64X_B,         \
                   [H_##C##32K_B] = &&L_##C##32K_B, [H_##C##32X_B] = &&L_##C##32X_B,
#define LABEL_A(O) [H_##O##64K] = &&L_##O##64K, [H_##O##64X] = &&L_##O##64X,                 \
                   [H_##O##32K] = &&L_##O##32K, [H_##O##32X] = &&L_##O##32X,
    static const void *const labels[H_COUNT] = {
        ALUOPS(LABEL_A) CONDS(LABEL_J) OTHER_HANDLERS(LABEL_ONE)
    };
    /* Frames apart by EBPFJIT_FRAME_GUARD unregistered bytes (and guarded at both ends), as
     * the JIT's frames are: a pointer into one frame that strays a little past it faults on
     * both engines instead of landing in whichever frame this layout puts next to it. */
    struct {
        struct {
            uint8_t guard[EBPFJIT_FRAME_GUARD];
            uint8_t bytes[EBPFJIT_STACK_SIZE];
        } f[EBPFJIT_MAX_FRAMES];
        uint8_t guard[EBPFJIT_FRAME_GUARD];
    } frames __attribute__((aligned(16)));
    struct frame_save saved[EBPFJIT_MAX_FRAMES];
    uint64_t reg[11];
    const struct ix *ip;
    uint64_t budget, flo, mbase, mlen, mwlen, addr;
    uint32_t depth;
    int ok;

    if (labels_out) {
        *labels_out = labels;
        return 0;
    }

    /* Frames are indexed by absolute depth, so a callback (base > 0) keeps its callers' frames
     * registered in st->frame_lo (reachable through pointers it was given). */
    zero_frame(frames.f[base].bytes);
    reg[0] = 0;
    reg[1] = r1;
    reg[2] = r2;
    reg[3] = r3;
    reg[4] = r4;
    reg[5] = r5;
    reg[6] = reg[7] = reg[8] = reg[9] = 0;
    flo = (uint64_t)(uintptr_t)frames.f[base].bytes;
    reg[10] = flo + EBPFJIT_STACK_SIZE;
    depth = base + 1;
    st->frame_lo[base] = flo;
    st->depth = depth;
    budget = st->budget;
    ip = start;

#define RELOAD_MEM()                                                                          \
    do {                                                                                      \
        mbase = st->mem_base;                                                                 \
        mlen = st->mem_len;                                                                   \
        mwlen = st->mem_writable ? mlen : 0;                                                  \
    } while (0)
    RELOAD_MEM();

#define DISPATCH() goto *ip->label
#define NEXT() do { ip++; DISPATCH(); } while (0)
#define DST reg[ip->dst]
#define SRC reg[ip->src]
#define IMM (ip->imm)
#define FAULT(code, a, n)                                                                     \
    do {                                                                                      \
        st->budget = budget;                                                                  \
        return ebpfjit_fault(st, (code), ip->pc, (a), (n));                                   \
    } while (0)
/* Charge the segment ending here (runtime_api.h); past the chunk, the runtime refills it or
 * records the fault (budget exhausted, timeout). */
#define SPEND() SPEND_C(ipg->charge[ip->pc])
#define SPEND_C(charge)                                                                       \
    do {                                                                                      \
        uint64_t c_ = (charge);                                                               \
        if (__builtin_expect(c_ >= budget, 0)) {                                              \
            budget = ebpfjit_budget_refill(st, budget, c_, ip->pc);                           \
            if (!budget)                                                                      \
                return st->status;                                                            \
        } else {                                                                              \
            budget -= c_;                                                                     \
        }                                                                                     \
    } while (0)
/* [a, a+n) in the current frame or the mem region, else the slow path. */
#define CHECK(a, n, lim, write, code)                                                         \
    do {                                                                                      \
        uint64_t fo_ = (a) - flo, mo_ = (a) - mbase;                                          \
        if (__builtin_expect(!(fo_ <= EBPFJIT_STACK_SIZE - (n) ||                             \
                               (mo_ <= (lim) && (lim) - mo_ >= (n))), 0)) {                   \
            st->budget = budget;                                                              \
            if (!ebpfjit_access_ok(st, (a), (n), (write)))                                    \
                FAULT(code, (a), (n));                                                        \
        }                                                                                     \
    } while (0)
#define CHECK_LD(a, n) CHECK(a, n, mlen, 0, EBPFJIT_ERR_OOB_LOAD)
#define CHECK_ST(a, n) CHECK(a, n, mwlen, 1, EBPFJIT_ERR_OOB_STORE)

    DISPATCH();

    /* ---- ALU. 32-bit results are zero-extended; K operands are pre-extended in IMM. ---- */
#define ALU64(O, expr_k, expr_x)                                                              \
    L_##O##64K: { uint64_t a = DST, b = IMM; (void)a; DST = (expr_k); NEXT(); }               \
    L_##O##64X: { uint64_t a = DST, b = SRC; (void)a; DST = (expr_x); NEXT(); }
#define ALU32(O, expr)                                                                        \
    L_##O##32K: { uint32_t a = (uint32_t)DST, b = (uint32_t)IMM; (void)a;                    \
                  DST = (uint32_t)(expr); NEXT(); }                                          \
    L_##O##32X: { uint32_t a = (uint32_t)DST, b = (uint32_t)SRC; (void)a;                    \
                  DST = (uint32_t)(expr); NEXT(); }
#define ALU(O, e64, e32) ALU64(O, e64, e64) ALU32(O, e32)

    ALU(ADD, a + b, a + b)
    ALU(SUB, a - b, a - b)
    ALU(MUL, a * b, a * b)
    ALU(OR, a | b, a | b)
    ALU(AND, a & b, a & b)
    ALU(XOR, a ^ b, a ^ b)
    ALU(MOV, b, b)
    /* Shift counts are masked (RFC 9669), never undefined. */
    ALU(LSH, a << (b & 63), a << (b & 31))
    ALU(RSH, a >> (b & 63), a >> (b & 31))
    ALU(ARSH, (uint64_t)((int64_t)a >> (b & 63)), (uint32_t)((int32_t)a >> (b & 31)))
    /* Division by zero gives 0; modulo by zero leaves dst (32-bit: its low half). */
    ALU(DIV, b ? a / b : 0, b ? a / b : 0)
    ALU(MOD, b ? a % b : a, b ? a % b : a)
    /* Signed: INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0 (they trap in C/x86). */
    ALU(SDIV,
        b == 0 ? 0 : (int64_t)b == -1 ? (uint64_t)0 - a : (uint64_t)((int64_t)a / (int64_t)b),
        b == 0 ? 0 : (int32_t)b == -1 ? (uint32_t)0 - a : (uint32_t)((int32_t)a / (int32_t)b))
    ALU(SMOD,
        b == 0 ? a : (int64_t)b == -1 ? 0 : (uint64_t)((int64_t)a % (int64_t)b),
        b == 0 ? a : (int32_t)b == -1 ? 0 : (uint32_t)((int32_t)a % (int32_t)b))

L_NEG64: DST = (uint64_t)0 - DST; NEXT();
L_NEG32: DST = (uint32_t)((uint32_t)0 - (uint32_t)DST); NEXT();
L_MOVSX64_8: DST = (uint64_t)(int64_t)(int8_t)SRC; NEXT();
L_MOVSX64_16: DST = (uint64_t)(int64_t)(int16_t)SRC; NEXT();
L_MOVSX64_32: DST = (uint64_t)(int64_t)(int32_t)SRC; NEXT();
L_MOVSX32_8: DST = (uint32_t)(int32_t)(int8_t)SRC; NEXT();
L_MOVSX32_16: DST = (uint32_t)(int32_t)(int16_t)SRC; NEXT();
    /* le on a little-endian host only truncates; be (and bswap) swap, zero-extended. */
L_LE16: DST = (uint16_t)DST; NEXT();
L_LE32: DST = (uint32_t)DST; NEXT();
L_LE64: NEXT();
L_BE16: DST = __builtin_bswap16((uint16_t)DST); NEXT();
L_BE32: DST = __builtin_bswap32((uint32_t)DST); NEXT();
L_BE64: DST = __builtin_bswap64(DST); NEXT();

    /* ---- jumps: _B variants are backward (target <= pc) and spend budget when taken. ---- */
#define JCOND(C, e64, e32)                                                                    \
    L_##C##64K: { uint64_t a = DST, b = IMM; if (e64) { ip = ip->tgt; DISPATCH(); } NEXT(); } \
    L_##C##64X: { uint64_t a = DST, b = SRC; if (e64) { ip = ip->tgt; DISPATCH(); } NEXT(); } \
    L_##C##32K: { uint32_t a = (uint32_t)DST, b = (uint32_t)IMM;                              \
                  if (e32) { ip = ip->tgt; DISPATCH(); } NEXT(); }                            \
    L_##C##32X: { uint32_t a = (uint32_t)DST, b = (uint32_t)SRC;                              \
                  if (e32) { ip = ip->tgt; DISPATCH(); } NEXT(); }                            \
    L_##C##64K_B: { uint64_t a = DST, b = IMM;                                                \
                    if (e64) { SPEND(); ip = ip->tgt; DISPATCH(); } NEXT(); }                 \
    L_##C##64X_B: { uint64_t a = DST, b = SRC;                                                \
                    if (e64) { SPEND(); ip = ip->tgt; DISPATCH(); } NEXT(); }                 \
    L_##C##32K_B: { uint32_t a = (uint32_t)DST, b = (uint32_t)IMM;                            \
                    if (e32) { SPEND(); ip = ip->tgt; DISPATCH(); } NEXT(); }                 \
    L_##C##32X_B: { uint32_t a = (uint32_t)DST, b = (uint32_t)SRC;                            \
                    if (e32) { SPEND(); ip = ip->tgt; DISPATCH(); } NEXT(); }
    JCOND(JEQ, a == b, a == b)
    JCOND(JNE, a != b, a != b)
    JCOND(JGT, a > b, a > b)
    JCOND(JGE, a >= b, a >= b)
    JCOND(JLT, a < b, a < b)
    JCOND(JLE, a <= b, a <= b)
    JCOND(JSET, (a & b) != 0, (a & b) != 0)
    JCOND(JSGT, (int64_t)a > (int64_t)b, (int32_t)a > (int32_t)b)
    JCOND(JSGE, (int64_t)a >= (int64_t)b, (int32_t)a >= (int32_t)b)
    JCOND(JSLT, (int64_t)a < (int64_t)b, (int32_t)a < (int32_t)b)
    JCOND(JSLE, (int64_t)a <= (int64_t)b, (int32_t)a <= (int32_t)b)

L_JA: ip = ip->tgt; DISPATCH();
L_CHARGE: SPEND_C(ip->imm); NEXT();   /* the fallthrough into a loop header */
L_JA_B: SPEND(); ip = ip->tgt; DISPATCH();

    /* ---- calls ---- */
L_CALL_HELPER: {
        ebpfjit_helper_fn fn;
        fn = st->env ? st->env->helpers[IMM] : NULL;
        if (__builtin_expect(!fn, 0)) {
            st->fault_info = IMM;
            FAULT(EBPFJIT_ERR_UNKNOWN_HELPER, 0, 0);
        }
        st->budget = budget;
        reg[0] = fn(reg[1], reg[2], reg[3], reg[4], reg[5]);
        if (__builtin_expect(st->status != 0, 0))
            return ebpfjit_helper_status(st, ip->pc);
        budget = st->budget;
        RELOAD_MEM();
        NEXT();
    }
L_CALL_UNKNOWN:
    if (st->status == 0)
        st->fault_info = IMM;
    FAULT(EBPFJIT_ERR_UNKNOWN_HELPER, 0, 0);
L_CALLX:
    st->budget = budget;
    reg[0] = ebpfjit_call_helper(st, DST, reg[1], reg[2], reg[3], reg[4], reg[5]);
    if (__builtin_expect(st->status != 0, 0))
        return ebpfjit_helper_status(st, ip->pc);
    budget = st->budget;
    RELOAD_MEM();
    NEXT();
L_CALL_LOCAL: {
        struct frame_save *s;
        SPEND();
        /* A static subprogram may be called, and may return, holding a lock: the kernel
         * (6.8+) accepts both; only the program's own exit must have released it. */
        if (__builtin_expect(depth >= EBPFJIT_MAX_FRAMES, 0))
            FAULT(EBPFJIT_ERR_CALL_DEPTH, 0, 0);
        s = &saved[depth - 1];
        s->ret = ip + 1;
        s->r6 = reg[6];
        s->r7 = reg[7];
        s->r8 = reg[8];
        s->r9 = reg[9];
        /* Callee entry: r0 and r6-r9 read as 0 (the JIT's registers are per function). */
        reg[0] = reg[6] = reg[7] = reg[8] = reg[9] = 0;
        zero_frame(frames.f[depth].bytes);
        flo = (uint64_t)(uintptr_t)frames.f[depth].bytes;
        st->frame_lo[depth] = flo;
        depth++;
        st->depth = depth;
        reg[10] = flo + EBPFJIT_STACK_SIZE;
        ip = ip->tgt;
        DISPATCH();
    }
L_EXIT: {
        struct frame_save *s;
        SPEND();
        if (depth == base + 1) {
            /* The program's exit (a callback's is checked where it returns, in
             * ebpfjit_invoke_callback, for both engines alike). */
            if (__builtin_expect(base == 0 && st->nlocks != 0, 0)) {
                st->budget = budget;
                return ebpfjit_lock_held(st, ip->pc, EBPFJIT_LOCK_REASON_HELD_AT_EXIT);
            }
            st->r0 = reg[0];
            st->budget = budget;
            return EBPFJIT_OK;
        }
        depth--;
        st->depth = depth;
        s = &saved[depth - 1];
        reg[6] = s->r6;
        reg[7] = s->r7;
        reg[8] = s->r8;
        reg[9] = s->r9;
        /* After the return the caller's r1-r5 read as 0 (clobbered by the call). */
        reg[1] = reg[2] = reg[3] = reg[4] = reg[5] = 0;
        flo = (uint64_t)(uintptr_t)frames.f[depth - 1].bytes;
        reg[10] = flo + EBPFJIT_STACK_SIZE;
        ip = s->ret;
        DISPATCH();
    }

    /* ---- 64-bit immediates and map references ---- */
L_LDDW: DST = IMM; NEXT();
L_LDDW_MAP: {
        uint32_t idx = (uint32_t)IMM;
        const struct ebpfjit_env *env = st->env;
        if (!env || idx >= env->nmaps || !env->maps || !env->maps[idx]) {
            st->fault_info = idx;
            FAULT(EBPFJIT_ERR_BAD_INSN, 0, 0);
        }
        DST = (uint64_t)(uintptr_t)env->maps[idx];
        NEXT();
    }
L_LDDW_MAPVAL: {
        uint32_t idx = (uint32_t)IMM;
        const struct ebpfjit_env *env = st->env;
        const struct ebpfjit_map_base *m;
        if (!env || idx >= env->nmaps || !env->maps || !(m = env->maps[idx]) || !m->values) {
            st->fault_info = idx;
            FAULT(EBPFJIT_ERR_BAD_INSN, 0, 0);
        }
        DST = (uint64_t)(uintptr_t)m->values + (IMM >> 32);
        NEXT();
    }

    /* ---- legacy packet loads: out of range ends the program with r0 = 0 ---- */
#define LDPKT(L, n, offexpr)                                                                  \
    L: {                                                                                      \
        uint64_t v_ = ebpfjit_ld_packet(st, (offexpr), (n), ip->pc, &ok);                     \
        if (!ok) {                                                                            \
            st->r0 = 0;                                                                       \
            st->budget = budget;                                                              \
            return EBPFJIT_OK;                                                                \
        }                                                                                     \
        reg[0] = v_;                                                                          \
        NEXT();                                                                               \
    }
    LDPKT(L_LDABS_B, 1, IMM)
    LDPKT(L_LDABS_H, 2, IMM)
    LDPKT(L_LDABS_W, 4, IMM)
    LDPKT(L_LDIND_B, 1, SRC + IMM)
    LDPKT(L_LDIND_H, 2, SRC + IMM)
    LDPKT(L_LDIND_W, 4, SRC + IMM)

    /* ---- loads and stores ---- */
#define LDX(L, n, expr)                                                                       \
    L: addr = SRC + (uint64_t)(int64_t)ip->off; CHECK_LD(addr, n); DST = (expr); NEXT();
    LDX(L_LDX_B, 1, ld8(addr))
    LDX(L_LDX_H, 2, ld16(addr))
    LDX(L_LDX_W, 4, ld32(addr))
    LDX(L_LDX_DW, 8, ld64(addr))
    LDX(L_LDXS_B, 1, (uint64_t)(int64_t)(int8_t)ld8(addr))
    LDX(L_LDXS_H, 2, (uint64_t)(int64_t)(int16_t)ld16(addr))
    LDX(L_LDXS_W, 4, (uint64_t)(int64_t)(int32_t)ld32(addr))
#define STORE(L, n, fn, val)                                                                  \
    L: addr = DST + (uint64_t)(int64_t)ip->off; CHECK_ST(addr, n); fn(addr, (val)); NEXT();
    STORE(L_ST_B, 1, st8, IMM)
    STORE(L_ST_H, 2, st16, IMM)
    STORE(L_ST_W, 4, st32, IMM)
    STORE(L_ST_DW, 8, st64, IMM)
    STORE(L_STX_B, 1, st8, SRC)
    STORE(L_STX_H, 2, st16, SRC)
    STORE(L_STX_W, 4, st32, SRC)
    STORE(L_STX_DW, 8, st64, SRC)

    /* ---- atomics (seq_cst); fetch forms load the old value into src, 32-bit zero-extended ---- */
#define ATOMIC(L, T, n, fn, fetch)                                                            \
    L: {                                                                                      \
        T old;                                                                                \
        addr = DST + (uint64_t)(int64_t)ip->off;                                              \
        CHECK_ST(addr, n);                                                                    \
        old = ATOMIC_RMW(T, fn, addr, SRC);                                                   \
        if (fetch)                                                                            \
            SRC = old;                                                                        \
        NEXT();                                                                               \
    }
    ATOMIC(L_A64_ADD, uint64_t, 8, __atomic_fetch_add, 0)
    ATOMIC(L_A64_OR, uint64_t, 8, __atomic_fetch_or, 0)
    ATOMIC(L_A64_AND, uint64_t, 8, __atomic_fetch_and, 0)
    ATOMIC(L_A64_XOR, uint64_t, 8, __atomic_fetch_xor, 0)
    ATOMIC(L_A64_FADD, uint64_t, 8, __atomic_fetch_add, 1)
    ATOMIC(L_A64_FOR, uint64_t, 8, __atomic_fetch_or, 1)
    ATOMIC(L_A64_FAND, uint64_t, 8, __atomic_fetch_and, 1)
    ATOMIC(L_A64_FXOR, uint64_t, 8, __atomic_fetch_xor, 1)
    ATOMIC(L_A64_XCHG, uint64_t, 8, __atomic_exchange_n, 1)
    ATOMIC(L_A32_ADD, uint32_t, 4, __atomic_fetch_add, 0)
    ATOMIC(L_A32_OR, uint32_t, 4, __atomic_fetch_or, 0)
    ATOMIC(L_A32_AND, uint32_t, 4, __atomic_fetch_and, 0)
    ATOMIC(L_A32_XOR, uint32_t, 4, __atomic_fetch_xor, 0)
    ATOMIC(L_A32_FADD, uint32_t, 4, __atomic_fetch_add, 1)
    ATOMIC(L_A32_FOR, uint32_t, 4, __atomic_fetch_or, 1)
    ATOMIC(L_A32_FAND, uint32_t, 4, __atomic_fetch_and, 1)
    ATOMIC(L_A32_FXOR, uint32_t, 4, __atomic_fetch_xor, 1)
    ATOMIC(L_A32_XCHG, uint32_t, 4, __atomic_exchange_n, 1)
    /* cmpxchg compares with r0 and always leaves the old value in r0. */
#define CMPXCHG(L, T, n)                                                                      \
    L: {                                                                                      \
        T expected = (T)reg[0];                                                               \
        addr = DST + (uint64_t)(int64_t)ip->off;                                              \
        CHECK_ST(addr, n);                                                                    \
        if ((addr & (n - 1)) == 0) {                                                          \
            __atomic_compare_exchange_n((T *)(uintptr_t)addr, &expected, (T)SRC, 0,           \
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                  \
        } else {                                                                              \
            T cur;                                                                            \
            memcpy(&cur, (void *)(uintptr_t)addr, n);                                         \
            if (cur == expected) {                                                            \
                T nv = (T)SRC;                                                                \
                memcpy((void *)(uintptr_t)addr, &nv, n);                                      \
            }                                                                                 \
            expected = cur;                                                                   \
        }                                                                                     \
        reg[0] = expected;                                                                    \
        NEXT();                                                                               \
    }
    CMPXCHG(L_A64_CMPXCHG, uint64_t, 8)
    CMPXCHG(L_A32_CMPXCHG, uint32_t, 4)

    /* ---- faults resolved at prepare time ---- */
L_FALL_OFF: FAULT(EBPFJIT_ERR_FALL_OFF, 0, 0);
L_FRAME_OOB_LD: FAULT(EBPFJIT_ERR_OOB_LOAD, reg[10] + (uint64_t)(int64_t)ip->off, IMM);
L_FRAME_OOB_ST: FAULT(EBPFJIT_ERR_OOB_STORE, reg[10] + (uint64_t)(int64_t)ip->off, IMM);
L_BAD_TARGET: FAULT(EBPFJIT_ERR_BAD_INSN, 0, 0);
L_BAD_INSN:
    if (st->status == 0)
        st->fault_info = IMM;
    FAULT(EBPFJIT_ERR_BAD_INSN, 0, 0);
}
