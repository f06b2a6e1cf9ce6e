//! A function's module evaluated once, and put back in every instance that
//! serves it (`module-state` in `wit/edgefn.wit`).
//!
//! Why: every request starts from the engine image, in which no function's
//! module exists. Loading the bytecode, evaluating the module and reading its
//! default export was about a tenth of a hello-world request's CPU (perf:
//! `JS_EvalFunction` 5.0%, `JS_ReadObject` 3.7%, the namespace and export
//! 1.7%). What that evaluation does is the same in every fresh instance, so
//! it is done once, in an instance of its own: the host keeps the bytes of
//! linear memory it changed, and writes them into each new instance instead.
//!
//! How: the engine calls `module-state.save` right after evaluating the
//! module (`handler.prepare`); while that call lasts the host reads the
//! memory (a [`MemoryView`] stands for the empty list the engine passes):
//! the pages the pool slot wrote, into a [`SavedMemory`]. The same call in a
//! fresh instance, with nothing evaluated and all of the memory read, gives
//! the memory to compare with, in 64-byte runs (a state keeps the changed
//! runs). In a request's instance, `handler.resume` calls
//! `module-state.restore`, whose empty result ([`RestoredMemory`]) is written
//! after the saved bytes are. Neither touches the engine's call stack, which
//! holds the frames of the calls in progress.
//!
//! Invariants:
//! - a state exists only for a module whose evaluation made no host call
//!   (no console line, no clock, no randomness, no secret, no query, no
//!   fetch), so it is exactly what every request's own evaluation would
//!   produce ([`Sandbox::prepare`](super::Sandbox::prepare) checks);
//! - the linear memory is all an evaluation changes: the engine has no
//!   mutable global but its stack pointer (back where it was when the call
//!   returns) and never writes its tables;
//! - a state is applied only to instances of the engine image it was saved
//!   from (it lives in memory, next to the one image the server runs);
//! - the host writes only within the instance's memory, and a state larger
//!   than the function's memory limit is not kept.

use std::mem::MaybeUninit;
use std::ops::Range;
use wasmtime::ValRaw;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext, LowerContext};
use wasmtime::component::{ComponentType, Lift, Lower};

/// Wasm's page size: what memory grows by.
const WASM_PAGE: usize = 64 << 10;
/// The granularity of the comparison, a cache line. An evaluation changes a
/// few bytes here and there (reference counts, list links) and writes its
/// new objects in one place: hello world's changes 4.7 KB in 26 runs, spread
/// over 16 host pages, which at page granularity would be 64 KB to keep and
/// to copy into every instance.
const CHUNK: usize = 64;

/// An instance's linear memory as `module-state.save` found it.
pub struct SavedMemory {
    /// The memory's bytes, where `read` says they were read; elsewhere zero
    /// here and the engine image's bytes in the instance.
    bytes: Vec<u8>,
    /// Per host page: whether `bytes` holds it.
    read: Vec<bool>,
}

/// The host's page size where [`written_pages`] can tell which pages an
/// instance wrote.
const HOST_PAGE: usize = 4 << 10;

impl SavedMemory {
    /// All of `memory`: a fresh instance's, which module states are the
    /// difference from.
    pub fn whole(memory: &[u8]) -> SavedMemory {
        SavedMemory { bytes: memory.to_vec(), read: vec![true; memory.len().div_ceil(HOST_PAGE)] }
    }

    /// The size of the memory it was saved from, in bytes.
    pub fn memory_size(&self) -> usize {
        self.bytes.len()
    }

    /// The pages of `memory` this slot of the pool ever wrote; the others
    /// still show the engine image, as in a fresh instance, and are left
    /// unread. Why: reading a page maps it into the slot, and every reset
    /// of the slot then scans one more page (`PAGEMAP_SCAN` looks at each
    /// mapped page), for every request the slot serves afterwards. Reading
    /// all of it mapped the whole image (242 pages against the 193 that
    /// requests touch) into each slot that prepared a module.
    pub fn written(memory: &[u8]) -> SavedMemory {
        let Some(written) = written_pages(memory) else { return SavedMemory::whole(memory) };
        let mut bytes = vec![0; memory.len()];
        for (page, &was_written) in written.iter().enumerate() {
            if was_written {
                let range = page * HOST_PAGE..((page + 1) * HOST_PAGE).min(memory.len());
                bytes[range.clone()].copy_from_slice(&memory[range]);
            }
        }
        SavedMemory { bytes, read: written }
    }
}

/// Per host page of `memory`, whether it is mapped to a private copy, i.e.
/// was written since the pool slot was set up (a reset copies the image's
/// bytes back into the copy and keeps it): Linux's `/proc/self/pagemap`,
/// bit 63 (present) without bit 61 (a file's page, here the engine image's).
/// `None` where that cannot be read.
fn written_pages(memory: &[u8]) -> Option<Vec<bool>> {
    use std::os::unix::fs::FileExt;
    if !cfg!(target_os = "linux") || std::env::consts::ARCH != "x86_64" || !(memory.as_ptr() as usize).is_multiple_of(HOST_PAGE) {
        return None;
    }
    let pages = memory.len().div_ceil(HOST_PAGE);
    let mut entries = vec![0u8; pages * 8];
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    pagemap.read_exact_at(&mut entries, (memory.as_ptr() as usize / HOST_PAGE * 8) as u64).ok()?;
    Some(
        entries
            .chunks_exact(8)
            .map(|entry| {
                let entry = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
                entry >> 63 & 1 == 1 && entry >> 61 & 1 == 0
            })
            .collect(),
    )
}

/// The instance's memory while `module-state.save` lasts, in place of the
/// empty list the engine passes: the host function reads what it keeps
/// (all of it, or the pages written) before it returns.
pub struct MemoryView {
    base: *const u8,
    len: usize,
}

// SAFETY: a view is only read within the host call it was lifted for, on
// the thread running that call.
unsafe impl Send for MemoryView {}
unsafe impl Sync for MemoryView {}

impl MemoryView {
    /// The memory's bytes.
    ///
    /// # Safety
    ///
    /// Only within the host call the view was lifted for: no guest code runs
    /// meanwhile, so the memory neither moves nor changes.
    pub unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: the caller's promise; lifted from `cx.memory()`.
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }

    fn of(memory: &[u8]) -> MemoryView {
        MemoryView { base: memory.as_ptr(), len: memory.len() }
    }
}

// SAFETY: typed as the `list<u8>` the WIT declares; lifting takes the whole
// memory instead of the (empty) list, which is the point.
unsafe impl ComponentType for MemoryView {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: views `cx.memory()`, the instance's own linear memory.
unsafe impl Lift for MemoryView {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, _ty: InterfaceType, _src: &Self::Lower) -> wasmtime::Result<Self> {
        Ok(MemoryView::of(cx.memory()))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, _bytes: &[u8]) -> wasmtime::Result<Self> {
        Ok(MemoryView::of(cx.memory()))
    }
}

/// What evaluating one function's module changed in the engine's memory.
pub struct ModuleState {
    /// The memory's size once the module was evaluated.
    memory_pages: u32,
    /// Where the changed bytes go, each range's bytes in `bytes`, in order.
    ranges: Vec<Range<usize>>,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for ModuleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleState").field("memory_pages", &self.memory_pages).field("bytes", &self.bytes.len()).finish()
    }
}

impl ModuleState {
    /// The difference between `saved` and `pristine` (a fresh instance's
    /// memory, saved the same way), outside the call stack `stack`; `None`
    /// when the memory shrank, which an evaluation cannot do.
    pub fn between(pristine: &SavedMemory, saved: &SavedMemory, stack: Range<usize>) -> Option<ModuleState> {
        let (before, after) = (&pristine.bytes, &saved.bytes);
        if after.len() < before.len() || after.len() % WASM_PAGE != 0 || pristine.read.iter().any(|&read| !read) {
            return None;
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut bytes = Vec::new();
        for start in (0..after.len()).step_by(CHUNK) {
            // A page left unread still shows the engine image, as a fresh
            // instance's does (beyond it, zeros).
            if !saved.read[start / HOST_PAGE] {
                continue;
            }
            let end = (start + CHUNK).min(after.len());
            // Past the fresh memory's end, the grown memory starts zeroed.
            let changed = match before.get(start..end) {
                Some(old) => old != &after[start..end],
                None => after[start..end].iter().any(|&b| b != 0),
            };
            if !changed {
                continue;
            }
            for part in outside(start..end, &stack) {
                bytes.extend_from_slice(&after[part.clone()]);
                match ranges.last_mut() {
                    Some(last) if last.end == part.start => last.end = part.end,
                    _ => ranges.push(part),
                }
            }
        }
        Some(ModuleState { memory_pages: u32::try_from(after.len() / WASM_PAGE).ok()?, ranges, bytes })
    }

    /// The memory's size, in Wasm pages, that `handler.resume` grows to.
    pub fn memory_pages(&self) -> u32 {
        self.memory_pages
    }

    /// The memory's size in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_pages as usize * WASM_PAGE
    }

    /// Bytes kept (what a warm function's state costs in memory).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// How many separate runs of bytes it writes.
    pub fn runs(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the evaluation changed nothing (never, in practice).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn write_into(&self, memory: &mut [u8]) -> wasmtime::Result<()> {
        if memory.len() < self.memory_bytes() {
            wasmtime::bail!("the instance's memory is smaller than the module state it resumes");
        }
        let mut at = 0;
        for range in &self.ranges {
            memory[range.clone()].copy_from_slice(&self.bytes[at..at + range.len()]);
            at += range.len();
        }
        Ok(())
    }
}

/// The parts of `chunk` outside `stack`.
fn outside(chunk: Range<usize>, stack: &Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let below = chunk.start..chunk.end.min(stack.start);
    let above = chunk.start.max(stack.end)..chunk.end;
    [below, above].into_iter().filter(|part| part.start < part.end)
}

/// The empty list `module-state.restore` returns, written into the
/// instance's memory after the module state it stands for.
pub struct RestoredMemory(pub std::sync::Arc<ModuleState>);

// SAFETY: typed as the `list<u8>` the WIT declares, and lowered as an empty
// one; the state is written first.
unsafe impl ComponentType for RestoredMemory {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;
    const MAY_REQUIRE_REALLOC: bool = false;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

/// An empty list's pointer: any non-null address aligned for bytes.
const EMPTY_LIST: u32 = 1;

// SAFETY: writes only into `cx.as_slice_mut()`, the instance's own memory,
// within its bounds.
unsafe impl Lower for RestoredMemory {
    fn linear_lower_to_flat<T>(&self, cx: &mut LowerContext<'_, T>, _ty: InterfaceType, dst: &mut MaybeUninit<Self::Lower>) -> wasmtime::Result<()> {
        self.0.write_into(cx.as_slice_mut())?;
        dst.write([ValRaw::u32(EMPTY_LIST), ValRaw::u32(0)]);
        Ok(())
    }

    fn linear_lower_to_memory<T>(&self, cx: &mut LowerContext<'_, T>, _ty: InterfaceType, offset: usize) -> wasmtime::Result<()> {
        self.0.write_into(cx.as_slice_mut())?;
        *cx.get::<4>(offset) = EMPTY_LIST.to_le_bytes();
        *cx.get::<4>(offset + 4) = 0u32.to_le_bytes();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(pages: usize, writes: &[(usize, u8)]) -> SavedMemory {
        let mut bytes = vec![0u8; pages * WASM_PAGE];
        for &(at, value) in writes {
            bytes[at] = value;
        }
        SavedMemory::whole(&bytes)
    }

    #[test]
    fn keeps_the_changed_chunks_outside_the_stack_and_writes_them_back() {
        let pristine = memory(2, &[(10, 1), (70_000, 2)]);
        let saved = memory(3, &[(10, 1), (100, 7), (5000, 8), (70_000, 3), (WASM_PAGE * 2 + 1, 9)]);
        // Byte 5000 changed on the stack.
        let state = ModuleState::between(&pristine, &saved, 4096..8192).expect("a state");
        assert_eq!(state.memory_pages(), 3);
        assert_eq!(state.ranges, vec![64..128, 69_952..70_016, 131_072..131_136]);
        assert_eq!(state.runs(), 3);
        let mut fresh = memory(3, &[(10, 1), (70_000, 2), (5000, 42)]).bytes;
        state.write_into(&mut fresh).expect("fits");
        assert_eq!((fresh[100], fresh[70_000], fresh[WASM_PAGE * 2 + 1]), (7, 3, 9));
        // The stack is left as the running instance has it.
        assert_eq!(fresh[5000], 42);
    }

    #[test]
    fn clips_a_chunk_the_stack_ends_in() {
        let pristine = memory(1, &[]);
        let saved = memory(1, &[(100, 1), (2010, 2), (2050, 3)]);
        // The stack ends inside the run 1984..2048; the next run adjoins it.
        let state = ModuleState::between(&pristine, &saved, 0..2000).expect("a state");
        assert_eq!(state.ranges, vec![2000..2112]);
        assert_eq!(state.len(), 112);
    }

    #[test]
    fn a_page_left_unread_is_unchanged() {
        let pristine = memory(1, &[(10, 1)]);
        let mut saved = memory(1, &[(10, 2), (5000, 3)]);
        // The first page was not written in the slot (so not read): it
        // shows the image, whatever `bytes` says.
        saved.read[0] = false;
        let state = ModuleState::between(&pristine, &saved, 0..0).expect("a state");
        assert_eq!(state.ranges, vec![4992..5056]);
    }

    #[test]
    fn written_pages_are_read_and_the_rest_left_alone() {
        // A page this test wrote, and one it never touched: an allocation
        // this large is fresh zeroed memory from the kernel, unmapped until
        // it is used.
        let mut memory = vec![0u8; 8 << 20];
        let offset = memory.as_ptr().align_offset(HOST_PAGE);
        let pages = &mut memory[offset..offset + 2 * HOST_PAGE];
        pages[..HOST_PAGE].fill(7);
        let saved = SavedMemory::written(pages);
        if written_pages(pages).is_some() {
            assert_eq!(saved.read, vec![true, false]);
        }
        assert_eq!(saved.bytes[..HOST_PAGE], [7; HOST_PAGE]);
    }

    #[test]
    fn refuses_a_memory_that_shrank() {
        assert!(ModuleState::between(&memory(2, &[]), &memory(1, &[]), 0..0).is_none());
    }

    #[test]
    fn writing_into_a_smaller_memory_fails_instead_of_writing_part() {
        let state = ModuleState::between(&memory(1, &[]), &memory(2, &[(WASM_PAGE + 5, 1)]), 0..0).expect("a state");
        let mut small = vec![0u8; WASM_PAGE];
        assert!(state.write_into(&mut small).is_err());
    }
}
