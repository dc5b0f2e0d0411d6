//! The Thumb-2 field routines (`firmware/vendor/blst/thumb2/mont_384-thumb2.S`) against a
//! reference written here from the definition, on inputs chosen to hit every carry: random
//! 384-bit values, values made of all-zero / all-one / modulus limbs, and the edges 0, 1, p−1,
//! p, 2p−1, 2^384−1; moduli: BLS12-381's p and random odd 384-bit ones with their top bit set
//! (where the 13th word of the Montgomery sum is often non-zero, which signing never reaches).
//!
//! The reference states what blst's portable C (`no_asm.h`, n = 12) computes, for every input:
//! * `mul_mont`: t = (a·b + M·p) / 2^384 with M < 2^384 the unique value making the numerator a
//!   multiple of 2^384 (computed here by separate product then word-by-word reduction, not the
//!   interleaved rows of the assembly); then t − p if t ≥ p, else t; low 384 bits (the select
//!   exactly as the C writes it: see `reduce_once`).
//! * `mul_mont_nonred`: t's low 384 bits (only where blst uses it: a, b < 2^382 with p, so t
//!   fits in 384 bits).
//! * `add_mod`: s = a + b (385 bits); s − p if s ≥ p, else s; low 384 bits.
//! * `sub_mod`: a − b, plus p if that borrowed; low 384 bits.

const N: usize = 12;
type Fe = [u32; N];

unsafe extern "C" {
    fn blst_t2_mul_mont_384(ret: *mut u32, a: *const u32, b: *const u32, p: *const u32, n0: u32);
    fn blst_t2_mul_mont_nonred_384(
        ret: *mut u32,
        a: *const u32,
        b: *const u32,
        p: *const u32,
        n0: u32,
    );
    fn blst_t2_add_mod_384(ret: *mut u32, a: *const u32, b: *const u32, p: *const u32);
    fn blst_t2_sub_mod_384(ret: *mut u32, a: *const u32, b: *const u32, p: *const u32);
}

/// BLS12-381's base field modulus, little-endian 32-bit limbs.
const P: Fe = [
    0xffff_aaab,
    0xb9fe_ffff,
    0xb153_ffff,
    0x1eab_fffe,
    0xf6b0_f624,
    0x6730_d2a0,
    0xf384_99f6,
    0x64774b84,
    0x434b_acd7,
    0x4b1b_a7b6,
    0x397f_e69a,
    0x1a01_11ea,
];

/// xorshift64*: test inputs only.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[allow(clippy::cast_possible_truncation)]
    fn word(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    fn element(&mut self, p: &Fe) -> Fe {
        let mut x = [0u32; N];
        match self.word() % 4 {
            // Uniform 384-bit.
            0 | 1 => x.iter_mut().for_each(|w| *w = self.word()),
            // Each limb 0, all ones, the modulus's limb, or random.
            2 => {
                for (i, w) in x.iter_mut().enumerate() {
                    *w = match self.word() % 4 {
                        0 => 0,
                        1 => u32::MAX,
                        2 => p[i],
                        _ => self.word(),
                    }
                }
            }
            // Edges: 0, 1, p−1, p, 2p−1 (mod 2^384), 2^384−1.
            _ => match self.word() % 6 {
                0 => {}
                1 => x[0] = 1,
                2 => x = sub(p, &one()).0,
                3 => x = *p,
                4 => x = sub(&add(p, p).0, &one()).0,
                _ => x = [u32::MAX; N],
            },
        }
        x
    }

    /// A random odd modulus with its top bit set, and −m⁻¹ mod 2^32.
    fn modulus(&mut self) -> (Fe, u32) {
        let mut m = [0u32; N];
        m.iter_mut().for_each(|w| *w = self.word());
        m[0] |= 1;
        m[N - 1] |= 0x8000_0000;
        (m, n0_of(m[0]))
    }
}

fn one() -> Fe {
    let mut x = [0u32; N];
    x[0] = 1;
    x
}

/// −m⁻¹ mod 2^32 by Newton's iteration (m odd).
fn n0_of(m0: u32) -> u32 {
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

#[allow(clippy::cast_possible_truncation)]
fn add(a: &Fe, b: &Fe) -> (Fe, u32) {
    let mut r = [0u32; N];
    let mut carry = 0u64;
    for i in 0..N {
        let s = u64::from(a[i]) + u64::from(b[i]) + carry;
        r[i] = s as u32;
        carry = s >> 32;
    }
    (r, carry as u32)
}

/// a − b mod 2^384 and the borrow (0 or 1).
#[allow(clippy::cast_possible_truncation)]
fn sub(a: &Fe, b: &Fe) -> (Fe, u32) {
    let mut r = [0u32; N];
    let mut borrow = 0u64;
    for i in 0..N {
        let d = u64::from(a[i])
            .wrapping_sub(u64::from(b[i]))
            .wrapping_sub(borrow);
        r[i] = d as u32;
        borrow = (d >> 63) & 1;
    }
    (r, borrow as u32)
}

/// blst's final conditional subtraction, exactly as its C writes it: d = x − p (low 384 bits),
/// mask = hi − borrow, result = (d & !mask) | (x & mask). Where blst uses it, (hi:x) < 2^384 + p,
/// and this is "(hi:x) − p if that is ≥ 0, else x"; beyond that (random 384-bit inputs) the mask
/// can be 1, and the C, so the assembly, mixes bits: the reference says the same.
fn reduce_once(x: &Fe, hi: u32, p: &Fe) -> Fe {
    let (d, borrow) = sub(x, p);
    let mask = hi.wrapping_sub(borrow);
    let mut r = [0u32; N];
    for i in 0..N {
        r[i] = (d[i] & !mask) | (x[i] & mask);
    }
    r
}

/// (a·b + M·p) / 2^384 as 13 words: the 24-word product, then M's words one at a time.
#[allow(clippy::cast_possible_truncation)]
fn mont_sum(a: &Fe, b: &Fe, p: &Fe, n0: u32) -> (Fe, u32) {
    let mut t = [0u32; 2 * N + 1];
    for i in 0..N {
        let mut carry = 0u64;
        for j in 0..N {
            let s = u64::from(a[i]) * u64::from(b[j]) + u64::from(t[i + j]) + carry;
            t[i + j] = s as u32;
            carry = s >> 32;
        }
        t[i + N] = carry as u32;
    }
    for i in 0..N {
        let m = t[i].wrapping_mul(n0);
        let mut carry = 0u64;
        for j in 0..N {
            let s = u64::from(m) * u64::from(p[j]) + u64::from(t[i + j]) + carry;
            t[i + j] = s as u32;
            carry = s >> 32;
        }
        for w in t.iter_mut().skip(i + N) {
            let s = u64::from(*w) + carry;
            *w = s as u32;
            carry = s >> 32;
        }
    }
    let mut r = [0u32; N];
    r.copy_from_slice(&t[N..2 * N]);
    (r, t[2 * N])
}

fn ref_mul(a: &Fe, b: &Fe, p: &Fe, n0: u32) -> Fe {
    let (t, hi) = mont_sum(a, b, p, n0);
    reduce_once(&t, hi, p)
}

fn ref_add(a: &Fe, b: &Fe, p: &Fe) -> Fe {
    let (s, carry) = add(a, b);
    reduce_once(&s, carry, p)
}

fn ref_sub(a: &Fe, b: &Fe, p: &Fe) -> Fe {
    let (d, borrow) = sub(a, b);
    if borrow == 1 { add(&d, p).0 } else { d }
}

/// What one routine was given and returned, for the failure message.
pub struct Mismatch {
    /// The routine.
    pub routine: &'static str,
    /// Which case (0-based).
    pub case: u32,
}

/// Run `cases` random cases of each routine; the first difference from the reference.
pub fn check(rng: &mut Rng, cases: u32) -> Result<(), Mismatch> {
    for case in 0..cases {
        let (p, n0) = if case % 2 == 0 {
            (P, n0_of(P[0]))
        } else {
            rng.modulus()
        };
        let a = rng.element(&p);
        let b = rng.element(&p);
        let mut got = [0u32; N];
        // SAFETY: the routines read 12 words from `a`, `b`, `p` and write 12 words to `got`,
        // all live arrays of 12 words; they touch no other memory than their own stack.
        unsafe { blst_t2_mul_mont_384(got.as_mut_ptr(), a.as_ptr(), b.as_ptr(), p.as_ptr(), n0) };
        if got != ref_mul(&a, &b, &p, n0) {
            return Err(Mismatch {
                routine: "mul_mont_384",
                case,
            });
        }
        // Aliased output, as blst calls it (mul_mont_n(bb, bb, aa, …)).
        let mut alias = a;
        // SAFETY: as above; `ret` and `a` are the same 12 words, which the routine allows.
        unsafe {
            blst_t2_mul_mont_384(
                alias.as_mut_ptr(),
                alias.as_ptr(),
                b.as_ptr(),
                p.as_ptr(),
                n0,
            )
        };
        if alias != got {
            return Err(Mismatch {
                routine: "mul_mont_384 (ret = a)",
                case,
            });
        }
        // SAFETY: as above.
        unsafe { blst_t2_add_mod_384(got.as_mut_ptr(), a.as_ptr(), b.as_ptr(), p.as_ptr()) };
        if got != ref_add(&a, &b, &p) {
            return Err(Mismatch {
                routine: "add_mod_384",
                case,
            });
        }
        let mut alias = b;
        // SAFETY: as above; `ret` and `b` are the same 12 words.
        unsafe { blst_t2_add_mod_384(alias.as_mut_ptr(), a.as_ptr(), alias.as_ptr(), p.as_ptr()) };
        if alias != got {
            return Err(Mismatch {
                routine: "add_mod_384 (ret = b)",
                case,
            });
        }
        // SAFETY: as above.
        unsafe { blst_t2_sub_mod_384(got.as_mut_ptr(), a.as_ptr(), b.as_ptr(), p.as_ptr()) };
        if got != ref_sub(&a, &b, &p) {
            return Err(Mismatch {
                routine: "sub_mod_384",
                case,
            });
        }
        let mut alias = b;
        // SAFETY: as above; `ret` and `b` are the same 12 words.
        unsafe { blst_t2_sub_mod_384(alias.as_mut_ptr(), a.as_ptr(), alias.as_ptr(), p.as_ptr()) };
        if alias != got {
            return Err(Mismatch {
                routine: "sub_mod_384 (ret = b)",
                case,
            });
        }
        // Non-reduced: BLS12-381's p, inputs below 2^382 (blst's use: values below 2p).
        let (mut a2, mut b2) = (a, b);
        a2[N - 1] &= 0x3fff_ffff;
        b2[N - 1] &= 0x3fff_ffff;
        let n0 = n0_of(P[0]);
        // SAFETY: as above.
        unsafe {
            blst_t2_mul_mont_nonred_384(got.as_mut_ptr(), a2.as_ptr(), b2.as_ptr(), P.as_ptr(), n0)
        };
        let (t, hi) = mont_sum(&a2, &b2, &P, n0);
        if hi != 0 || got != t {
            return Err(Mismatch {
                routine: "mul_mont_nonred_384",
                case,
            });
        }
    }
    Ok(())
}
