//! The request arena: while a request runs, small allocations are carved
//! one after another from a block taken once, and freeing them costs
//! nothing.
//!
//! Why: an instance serves one request and is thrown away, so the work a
//! general allocator does to reuse memory (wasi-libc's dlmalloc: bins,
//! splitting, coalescing on every free) buys nothing for what a request
//! allocates and drops in microseconds, and QuickJS allocates for every
//! object, string, array and property table. The arena is bounded: once it
//! is used up, allocations go to dlmalloc as before, so a function that
//! churns through memory still has it reclaimed.
//!
//! How: the engine is linked with `--wrap` for `malloc`, `calloc`, `realloc`
//! and `free` (`compiler/build/main.rs`), so every call to them, QuickJS's
//! and Rust's, comes here first; `__real_*` are dlmalloc's. The arena is off
//! except in `handle` (snapshot, compile and prepare allocate what lives on,
//! and keep dlmalloc). A block's size is kept in the word before it, for
//! `realloc`. The last block can grow in place, and freeing it gives its
//! memory back to the next allocation.
//!
//! Measured with fuel (Wasm instructions per request, from the execution
//! records): hello world 84.3K -> 74.7K, the JSON API of
//! `benches/reference/api.js` 325.2K -> 293.8K; callgrind, the whole server per hello-world request: 433.6K ->
//! 426.5K machine instructions. Hello world allocates under a page of it. A
//! function that goes through megabytes pays about 3% more fuel once past
//! the arena, for the check in front of every dlmalloc call.

use core::ptr::null_mut;

/// The arena's size: taken from dlmalloc once, at pre-initialization, past
/// everything the snapshot keeps, so its pages are zero in every instance
/// and part of the memory it starts with (taken per request, it made every
/// request grow the memory, and so fault fresh pages in).
const ARENA_BYTES: usize = 256 << 10;
/// Blocks are aligned as dlmalloc aligns them (wasm32's `max_align_t`).
const ALIGN: usize = 16;
/// Bytes before each block: its size.
const HEADER: usize = core::mem::size_of::<usize>();

struct Arena {
    start: usize,
    next: usize,
    end: usize,
    /// The block `next` follows, which can grow or be given back.
    last: usize,
}

/// The arena's memory, from [`reserve`]: `(start, end)`.
static mut RESERVED: (usize, usize) = (0, 0);
/// Off (empty) until [`start`]; in linear memory like everything else the
/// engine keeps, so snapshots and module states carry it.
static mut ARENA: Arena = Arena { start: 0, next: 0, end: 0, last: 0 };

unsafe extern "C" {
    fn __real_malloc(size: usize) -> *mut u8;
    fn __real_calloc(count: usize, size: usize) -> *mut u8;
    fn __real_realloc(block: *mut u8, size: usize) -> *mut u8;
    fn __real_free(block: *mut u8);
}

/// Takes the arena's memory from dlmalloc for good; called last at
/// pre-initialization. Without it, [`start`] changes nothing.
pub fn reserve() {
    // SAFETY: single-threaded instance; a block of dlmalloc's, never freed.
    unsafe {
        let block = __real_malloc(ARENA_BYTES) as usize;
        if block != 0 {
            RESERVED = (block, block + ARENA_BYTES);
        }
    }
}

/// Turns the arena on for the rest of this instance's life: the request it
/// serves.
pub fn start() {
    // SAFETY: single-threaded instance.
    unsafe {
        let (start, end) = RESERVED;
        ARENA = Arena { start, next: start, end, last: 0 };
    }
}

fn owns(block: usize) -> bool {
    // SAFETY: single-threaded instance.
    let arena = unsafe { &*&raw const ARENA };
    block >= arena.start && block < arena.end
}

/// A block of `size` bytes from the arena, if it has room.
fn take(size: usize) -> Option<usize> {
    // SAFETY: single-threaded instance.
    let arena = unsafe { &mut *&raw mut ARENA };
    let block = (arena.next + HEADER + ALIGN - 1) & !(ALIGN - 1);
    let end = block.checked_add(size.max(1))?;
    if arena.start == 0 || end > arena.end {
        return None;
    }
    // SAFETY: inside the arena, which dlmalloc handed over whole.
    unsafe { ((block - HEADER) as *mut usize).write(size) };
    arena.next = end;
    arena.last = block;
    Some(block)
}

fn block_size(block: usize) -> usize {
    // SAFETY: `block` came from `take`, which wrote its size before it.
    unsafe { ((block - HEADER) as *const usize).read() }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_malloc(size: usize) -> *mut u8 {
    match take(size) {
        Some(block) => block as *mut u8,
        // SAFETY: dlmalloc's malloc, as the caller asked.
        None => unsafe { __real_malloc(size) },
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_calloc(count: usize, size: usize) -> *mut u8 {
    let Some(bytes) = count.checked_mul(size) else { return null_mut() };
    match take(bytes) {
        // Zeroed here: freeing the last block lets the next one reuse its
        // memory.
        Some(block) => {
            // SAFETY: a fresh block of `bytes` bytes.
            unsafe { core::ptr::write_bytes(block as *mut u8, 0, bytes) };
            block as *mut u8
        }
        // SAFETY: dlmalloc's calloc, as the caller asked.
        None => unsafe { __real_calloc(count, size) },
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_realloc(block: *mut u8, size: usize) -> *mut u8 {
    let address = block as usize;
    if !owns(address) {
        // SAFETY: a block of dlmalloc's (or null), as the caller asked.
        return unsafe { __real_realloc(block, size) };
    }
    let old = block_size(address);
    // SAFETY: single-threaded instance.
    let arena = unsafe { &mut *&raw mut ARENA };
    // Checked: on wasm32 a size near 4 GiB would wrap past the arena's end.
    if address == arena.last
        && let Some(end) = address.checked_add(size.max(1)).filter(|&end| end <= arena.end)
    {
        // The last block grows or shrinks where it is.
        // SAFETY: inside the arena; the header is the block's.
        unsafe { ((address - HEADER) as *mut usize).write(size) };
        arena.next = end;
        return block;
    }
    // SAFETY: a new block of at least `size` bytes, and the old one's
    // `old` bytes, which the caller still owns.
    unsafe {
        let moved = __wrap_malloc(size);
        if !moved.is_null() {
            core::ptr::copy_nonoverlapping(block, moved, old.min(size));
        }
        moved
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_free(block: *mut u8) {
    let address = block as usize;
    if !owns(address) {
        // SAFETY: a block of dlmalloc's (or null), as the caller asked.
        return unsafe { __real_free(block) };
    }
    // SAFETY: single-threaded instance.
    let arena = unsafe { &mut *&raw mut ARENA };
    if address == arena.last {
        arena.next = address - HEADER;
        arena.last = 0;
    }
}
