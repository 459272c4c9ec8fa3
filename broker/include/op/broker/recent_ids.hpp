// The id index's newest ids, held whole: an open-addressing table of (id hash, seq, where the
// id's bytes are in one arena). Every publish asks it and most then add to it, so neither may
// allocate: a std::unordered_map<std::string, seq> cost two allocations an id (its node and the
// 32-character string) and as many frees when a run was written, and its lookup hashed and
// compared whole strings. Here a lookup compares 64-bit hashes along one probe run and the
// bytes only on a hash match, and clear() rewrites one array instead of freeing every id.
//
// Linear probing over a power-of-two table kept at most 5/8 full (a miss reads ~4 slots, two
// cache lines); the hash is events::id_hash64, already well mixed. An erased id leaves a
// tombstone (its bytes stay in the arena until clear()): erasing is rare (an append whose write
// or fsync failed).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace op::broker {

// Memory for the table, on 2 MiB pages once it is that large. Every publish probes a random
// slot of a table of up to 32 MiB: on 4 KiB pages nearly each probe also missed the TLB, and in
// a VM a TLB miss walks two page tables; that one load was 8 % of the broker's samples under
// load (bench --broker, 64 publishers).
// Transparent huge pages, where the kernel has them (madvise mode included); a hint only.
template <class T>
struct HugePageAllocator {
    using value_type = T;
    static constexpr std::size_t kHugePage = std::size_t{2} << 20;

    HugePageAllocator() = default;
    template <class U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        if (bytes < kHugePage) return std::allocator<T>().allocate(n);
        const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
        void* p = std::aligned_alloc(kHugePage, rounded);
        if (p == nullptr) throw std::bad_alloc();
        ::madvise(p, rounded, MADV_HUGEPAGE);
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n * sizeof(T) < kHugePage) {
            std::allocator<T>().deallocate(p, n);
        } else {
            std::free(p);
        }
    }
    template <class U>
    bool operator==(const HugePageAllocator<U>&) const noexcept {
        return true;
    }
};

class RecentIds {
public:
    // Sized for `expected` ids from the start: growing means moving every id to a table twice
    // the size, and in the broker's loop that held every publish (at 131,072 ids, a 16 MiB
    // table: 39 ms without an event appended, seen at 64 clients).
    explicit RecentIds(std::size_t expected = 1024) {
        rehash(capacity_for(expected));
        arena_.reserve(expected * kTypicalIdBytes);
    }

    std::optional<std::uint64_t> find(std::string_view id, std::uint64_t hash) const {
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.seq == kEmpty) return std::nullopt;
            if (s.seq != kErased && s.hash == hash && bytes_of(s) == id) return s.seq;
        }
    }

    // seq > 0. An id already present keeps its first seq, as the log's first copy is the one.
    void insert(std::string_view id, std::uint64_t hash, std::uint64_t seq) {
        if ((used_ + 1) * 8 > slots_.size() * 5) rehash(capacity_for(live_ + 1));
        std::size_t i = hash & mask_;
        for (;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.seq == kEmpty) break;
            if (s.seq != kErased && s.hash == hash && bytes_of(s) == id) return;
        }
        slots_[i] = Slot{hash, seq, arena_.size(), id.size()};
        arena_.append(id);
        ++used_;
        ++live_;
    }

    void erase(std::string_view id, std::uint64_t hash) {
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.seq == kEmpty) return;
            if (s.seq != kErased && s.hash == hash && bytes_of(s) == id) {
                s.seq = kErased;
                --live_;
                return;
            }
        }
    }

    std::size_t size() const { return live_; }
    std::size_t capacity() const { return slots_.size(); }  // slots, live or not
    bool empty() const { return live_ == 0; }

    // Keeps the table's size, so the next run's ids fill it without growing it again.
    void clear() {
        std::fill(slots_.begin(), slots_.end(), Slot{});
        arena_.clear();
        used_ = 0;
        live_ = 0;
    }

    // Calls each(hash, seq) for every id held, in no particular order.
    template <class Each>
    void for_each(Each&& each) const {
        for (const Slot& s : slots_) {
            if (s.seq != kEmpty && s.seq != kErased) each(s.hash, s.seq);
        }
    }

private:
    static constexpr std::uint64_t kEmpty = 0;  // seqs start at 1
    static constexpr std::uint64_t kErased = ~std::uint64_t{0};
    static constexpr std::size_t kTypicalIdBytes = 32;  // events::random_id, derived_id

    struct Slot {
        std::uint64_t hash = 0;
        std::uint64_t seq = kEmpty;
        std::size_t offset = 0;  // of the id's bytes in arena_
        std::size_t length = 0;
    };

    static std::size_t capacity_for(std::size_t ids) {
        std::size_t n = 16;
        while (n * 5 < ids * 8) n *= 2;
        return n;
    }

    std::string_view bytes_of(const Slot& s) const {
        return std::string_view(arena_.data() + s.offset, s.length);
    }

    // Moves every live id into a table of `capacity` slots (tombstones are dropped).
    void rehash(std::size_t capacity) {
        Slots old(capacity);
        old.swap(slots_);
        mask_ = slots_.size() - 1;
        used_ = 0;
        for (const Slot& s : old) {
            if (s.seq == kEmpty || s.seq == kErased) continue;
            std::size_t i = s.hash & mask_;
            while (slots_[i].seq != kEmpty) i = (i + 1) & mask_;
            slots_[i] = s;
            ++used_;
        }
        live_ = used_;
    }

    using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
    Slots slots_;
    std::size_t mask_ = 0;
    std::size_t used_ = 0;  // live ids and tombstones: what fills the probe runs
    std::size_t live_ = 0;
    std::string arena_;
};

}  // namespace op::broker
