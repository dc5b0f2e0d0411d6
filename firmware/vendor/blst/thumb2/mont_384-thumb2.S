/*
 * Montgomery multiplication and modular addition/subtraction for 384-bit
 * operands (twelve 32-bit limbs) in Thumb-2 for ARMv8-M Mainline with the DSP
 * extension (Cortex-M33: QEMU mps2-an505, RP2350). Added by pawl to its vendored
 * copy of blst; blst's own code has no 32-bit ARM assembly. See ../PAWL-CHANGES.md.
 *
 * Each function computes exactly what the portable C it replaces computes
 * (blst/src/no_asm.h: mul_mont_n, add_mod_n, sub_mod_n with n = 12: for every
 * input, including the C's final mask carry - borrow; mul_mont_nonred_n: for
 * every input where the C's own precondition holds, i.e. the Montgomery sum
 * fits in 384 bits, as with blst's p and operands below 2p).
 *
 * Constant time: no branch and no memory address depends on an operand value;
 * the only branches are the row loop (fixed count) and the public "reduce or
 * not" entry choice. The final conditional subtraction is a mask select.
 * UMAAL, MUL, ADDS/ADCS/SUBS/SBCS, LDRD/STRD and LDM/STM of fixed lists are
 * taken to have data-independent timing on the M33, as the portable C already
 * took for the UMULL/UMLAL its compiler emits (to confirm on silicon).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
        .syntax unified
        .arch   armv8-m.main
        .arch_extension dsp
        .thumb
        .text

/*
 * void blst_t2_mul_mont_384(limb_t ret[12], const limb_t a[12],
 *                           const limb_t b[12], const limb_t p[12], limb_t n0);
 * void blst_t2_mul_mont_nonred_384(...same...);
 *
 * ret = a*b/2^384 mod p (CIOS, multiplication and reduction interleaved per
 * row: t = (t + a*b[j] + m*p) / 2^32 with m = (t[0] + a[0]*b[j])*n0 mod 2^32).
 * The nonred entry skips the final conditional subtraction, like
 * mul_mont_nonred_n. ret may alias a or b: it is written only at the end.
 *
 * Frame: t[0..11] at sp+0, ret at sp+48, reduce flag at sp+52, end of b at
 * sp+60, top word of t (0 or 1) at sp+64; n0 at sp+104 (the caller's).
 * A row works on limb pairs (LDRD/STRD), registers: r0 b (advancing), r1 a,
 * r3 p, r2 b[j], r4 m, r5 carry of the a*b[j] chain, r6 carry of the m*p
 * chain, r8 and r7/r9 a pair of t (the odd one is written with the next
 * pair, one word lower), r10/r11 a pair of a, r12/lr a pair of p.
 */
        .macro  T2_PAIR k, ev, od, prev
        ldrd    \ev, \od, [sp, #8*\k]
        ldrd    r10, r11, [r1, #8*\k]
        ldrd    r12, lr, [r3, #8*\k]
        umaal   \ev, r5, r10, r2
        umaal   \ev, r6, r12, r4
        umaal   \od, r5, r11, r2
        umaal   \od, r6, lr, r4
        strd    \prev, \ev, [sp, #8*\k-8]
        .endm

        .global blst_t2_mul_mont_384
        .type   blst_t2_mul_mont_384, %function
        .thumb_func
blst_t2_mul_mont_384:
        push    {r4-r11, lr}
        sub     sp, sp, #68
        movs    r4, #1
        b       .Lmul_body
        .size   blst_t2_mul_mont_384, .-blst_t2_mul_mont_384

        .global blst_t2_mul_mont_nonred_384
        .type   blst_t2_mul_mont_nonred_384, %function
        .thumb_func
blst_t2_mul_mont_nonred_384:
        push    {r4-r11, lr}
        sub     sp, sp, #68
        movs    r4, #0
.Lmul_body:
        str     r0, [sp, #48]
        str     r4, [sp, #52]
        mov     r0, r2
        add     r4, r2, #48
        str     r4, [sp, #60]
        movs    r4, #0
        movs    r5, #0
        strd    r4, r5, [sp, #0]
        strd    r4, r5, [sp, #8]
        strd    r4, r5, [sp, #16]
        strd    r4, r5, [sp, #24]
        strd    r4, r5, [sp, #32]
        strd    r4, r5, [sp, #40]
        str     r4, [sp, #64]
.Lrow:
        ldr     r2, [r0], #4
        ldrd    r8, r9, [sp, #0]
        ldrd    r10, r11, [r1, #0]
        ldrd    r12, lr, [r3, #0]
        mov     r5, #0
        mov     r6, #0
        umaal   r8, r5, r10, r2
        ldr     r4, [sp, #104]
        mul     r4, r8, r4
        umaal   r8, r6, r12, r4
        umaal   r9, r5, r11, r2
        umaal   r9, r6, lr, r4
        T2_PAIR 1, r8, r7, r9
        T2_PAIR 2, r8, r9, r7
        T2_PAIR 3, r8, r7, r9
        T2_PAIR 4, r8, r9, r7
        T2_PAIR 5, r8, r7, r9
        /* r6:r5 = c1 + c2 + top (top * 1 + r5 + r6): t[11] and the new top */
        ldr     r10, [sp, #64]
        mov     r9, #1
        umaal   r5, r6, r10, r9
        str     r6, [sp, #64]
        strd    r7, r5, [sp, #40]
        ldr     r9, [sp, #60]
        cmp     r0, r9
        bne     .Lrow

        ldr     r0, [sp, #48]
        ldr     r4, [sp, #52]
        ldr     lr, [sp, #64]
        mov     r12, sp
        cmp     r4, #0
        beq     .Lcopy
        /* ret = t - p, then mask = top - borrow selects t back if t < p */
        ldm     r12!, {r4-r7}
        ldm     r3!, {r8-r11}
        subs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r0!, {r4-r7}
        .rept   2
        ldm     r12!, {r4-r7}
        ldm     r3!, {r8-r11}
        sbcs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r0!, {r4-r7}
        .endr
        sbc     r2, lr, #0
        sub     r0, r0, #48
        mov     r12, sp
        bl      .Lselect
        add     sp, sp, #68
        pop     {r4-r11, pc}
.Lcopy:
        .rept   3
        ldm     r12!, {r4-r7}
        stm     r0!, {r4-r7}
        .endr
        add     sp, sp, #68
        pop     {r4-r11, pc}
        .size   blst_t2_mul_mont_nonred_384, .-blst_t2_mul_mont_nonred_384

/*
 * Local helper: for 12 words, ret[i] ^= (ret[i] ^ alt[i]) & mask.
 * In: r0 ret, r12 alt, r2 mask. Clobbers r0, r4-r12.
 */
        .type   .Lselect, %function
        .thumb_func
.Lselect:
        .rept   3
        ldm     r0, {r4-r7}
        ldm     r12!, {r8-r11}
        eor     r8, r8, r4
        eor     r9, r9, r5
        eor     r10, r10, r6
        eor     r11, r11, r7
        and     r8, r8, r2
        and     r9, r9, r2
        and     r10, r10, r2
        and     r11, r11, r2
        eor     r4, r4, r8
        eor     r5, r5, r9
        eor     r6, r6, r10
        eor     r7, r7, r11
        stm     r0!, {r4-r7}
        .endr
        bx      lr

/*
 * void blst_t2_add_mod_384(limb_t ret[12], const limb_t a[12],
 *                          const limb_t b[12], const limb_t p[12]);
 * t = a + b (13 words), ret = t - p, then t selected back if t < p.
 * ret may alias a or b (t is kept on the stack).
 */
        .global blst_t2_add_mod_384
        .type   blst_t2_add_mod_384, %function
        .thumb_func
blst_t2_add_mod_384:
        push    {r4-r11, lr}
        sub     sp, sp, #48
        mov     r12, sp
        ldm     r1!, {r4-r7}
        ldm     r2!, {r8-r11}
        adds    r4, r4, r8
        adcs    r5, r5, r9
        adcs    r6, r6, r10
        adcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .rept   2
        ldm     r1!, {r4-r7}
        ldm     r2!, {r8-r11}
        adcs    r4, r4, r8
        adcs    r5, r5, r9
        adcs    r6, r6, r10
        adcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .endr
        mov     lr, #0
        adc     lr, lr, #0
        mov     r12, sp
        mov     r1, r0
        ldm     r12!, {r4-r7}
        ldm     r3!, {r8-r11}
        subs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r1!, {r4-r7}
        .rept   2
        ldm     r12!, {r4-r7}
        ldm     r3!, {r8-r11}
        sbcs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r1!, {r4-r7}
        .endr
        sbc     r2, lr, #0
        mov     r12, sp
        bl      .Lselect
        add     sp, sp, #48
        pop     {r4-r11, pc}
        .size   blst_t2_add_mod_384, .-blst_t2_add_mod_384

/*
 * void blst_t2_sub_mod_384(limb_t ret[12], const limb_t a[12],
 *                          const limb_t b[12], const limb_t p[12]);
 * ret = a - b, plus p if that borrowed (p masked, no branch).
 * ret may alias a or b: each 4-word chunk is read before it is written.
 */
        .global blst_t2_sub_mod_384
        .type   blst_t2_sub_mod_384, %function
        .thumb_func
blst_t2_sub_mod_384:
        push    {r4-r11, lr}
        mov     r12, r0
        ldm     r1!, {r4-r7}
        ldm     r2!, {r8-r11}
        subs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .rept   2
        ldm     r1!, {r4-r7}
        ldm     r2!, {r8-r11}
        sbcs    r4, r4, r8
        sbcs    r5, r5, r9
        sbcs    r6, r6, r10
        sbcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .endr
        sbc     lr, lr, lr
        mov     r12, r0
        ldm     r0, {r4-r7}
        ldm     r3!, {r8-r11}
        and     r8, r8, lr
        and     r9, r9, lr
        and     r10, r10, lr
        and     r11, r11, lr
        adds    r4, r4, r8
        adcs    r5, r5, r9
        adcs    r6, r6, r10
        adcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .rept   2
        ldm     r12, {r4-r7}
        ldm     r3!, {r8-r11}
        and     r8, r8, lr
        and     r9, r9, lr
        and     r10, r10, lr
        and     r11, r11, lr
        adcs    r4, r4, r8
        adcs    r5, r5, r9
        adcs    r6, r6, r10
        adcs    r7, r7, r11
        stm     r12!, {r4-r7}
        .endr
        pop     {r4-r11, pc}
        .size   blst_t2_sub_mod_384, .-blst_t2_sub_mod_384
