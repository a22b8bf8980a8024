//! libdeflate, compressing straight into a `Vec`'s spare capacity.
//!
//! The `libdeflater` bindings want an initialised output slice, so every entry would need a
//! zeroed buffer of libdeflate's worst-case bound (> 16 MiB): touched, resident memory for
//! nothing, and a copy into the part afterwards. Here the output goes into reserved but
//! untouched capacity at the end of the part being built, and only what libdeflate writes is
//! ever touched.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_compressor, libdeflate_compressor, libdeflate_deflate_compress, libdeflate_deflate_compress_bound,
    libdeflate_free_compressor, libdeflate_gzip_compress, libdeflate_gzip_compress_bound,
};

/// What the compressed bytes are wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// Raw DEFLATE (RFC 1951), as in a ZIP entry.
    Raw,
    /// One gzip member (RFC 1952).
    Gzip,
}

/// One libdeflate compressor (its match-finder tables are reused from call to call).
pub struct Deflater(NonNull<libdeflate_compressor>);

// The compressor is plain memory owned by this value; libdeflate keeps no thread-local state.
unsafe impl Send for Deflater {}

impl Deflater {
    /// A compressor at `level` (1–12; clamped).
    pub fn new(level: u32) -> Self {
        let level = level.clamp(1, 12) as i32;
        // SAFETY: any level in 0..=12 is valid; a null result is an allocation failure.
        let p = unsafe { libdeflate_alloc_compressor(level) };
        // Out of memory: a panic, which the export worker turns into a FAILED task.
        Self(NonNull::new(p).expect("libdeflate could not allocate a compressor (out of memory)"))
    }

    /// Appends `input`, compressed, to `out`; returns the number of bytes appended.
    pub fn compress_into(&mut self, wrapper: Wrapper, input: &[u8], out: &mut Vec<u8>) -> usize {
        let p = self.0.as_ptr();
        // SAFETY: `p` is a live compressor; the bound functions only read it.
        let bound = unsafe {
            match wrapper {
                Wrapper::Raw => libdeflate_deflate_compress_bound(p, input.len()),
                Wrapper::Gzip => libdeflate_gzip_compress_bound(p, input.len()),
            }
        };
        out.reserve(bound);
        let spare = out.spare_capacity_mut();
        // SAFETY: `input` is valid for reads of its length; `spare` is valid for writes of its
        // length (≥ bound), and libdeflate writes at most that many bytes and returns how many.
        let n = unsafe {
            let (i, o) = (input.as_ptr().cast(), spare.as_mut_ptr().cast());
            match wrapper {
                Wrapper::Raw => libdeflate_deflate_compress(p, i, input.len(), o, spare.len()),
                Wrapper::Gzip => libdeflate_gzip_compress(p, i, input.len(), o, spare.len()),
            }
        };
        // libdeflate's bound is a guarantee: 0 ("did not fit") cannot happen with it.
        assert!(n > 0 && n <= spare.len(), "libdeflate wrote {n} of a {bound}-byte bound");
        // SAFETY: the first `n` spare bytes were just written.
        unsafe { out.set_len(out.len() + n) };
        n
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_compressor`, freed once.
        unsafe { libdeflate_free_compressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn raw_and_gzip_output_inflates_back_after_what_was_already_there() {
        let input: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{i},row {},OK\r\n", i % 97).into_bytes()).collect();
        let mut d = Deflater::new(5);
        let mut out = b"prefix".to_vec();
        let n = d.compress_into(Wrapper::Raw, &input, &mut out);
        assert_eq!(out.len(), 6 + n);
        assert_eq!(&out[..6], b"prefix");
        assert!(n < input.len() / 4, "CSV-like rows compress: {n}");
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&out[6..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, input);

        let mut gz = Vec::new();
        d.compress_into(Wrapper::Gzip, &input, &mut gz);
        d.compress_into(Wrapper::Gzip, b"second member", &mut gz);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), input.len() + 13);
        assert!(back.ends_with(b"second member"));
    }

    #[test]
    fn incompressible_input_still_fits_the_bound() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let input: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = Vec::new();
        let n = Deflater::new(12).compress_into(Wrapper::Raw, &input, &mut out);
        assert!(n >= input.len(), "random bytes do not shrink");
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, input);
    }
}
