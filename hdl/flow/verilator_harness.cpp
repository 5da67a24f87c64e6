// Verilator harness of the accelerator top (hdl/flow/verilator.py builds and drives it).
//
// The outside world of hdl.top.Accelerator, cycle for cycle as hdl/flow/amaranth_sim.py builds it for
// the Amaranth simulator: an instruction memory (four synchronous read ports, data one cycle
// after the address) and the DRAM model of hdl/dram.py (read requests wait `LATENCY` cycles
// and at most `DEPTH` may wait; beats in request order, one per cycle, cut at every `word`
// bytes and then every `BANDWIDTH` bytes; a read sees the writes of earlier cycles; write
// beats land at the end of their cycle; a beat with `last` is acknowledged `LATENCY` cycles
// later). With LATENCY 0 the DRAM answers in the cycle of the request: inputs are settled by
// evaluating until they no longer change.
//
// Usage: harness DIR MAX_CYCLES [VCD_PATH VCD_FROM VCD_TO]
//   DIR/dram.bin   the DRAM image (overwritten with the final DRAM)
//   DIR/imem.bin   the instructions, 64 bytes each, the four streams one after another
//   DIR/streams.txt  "base count" per engine (load, compute, post, store)
//   writes DIR/trace.txt ("<engine> <s|d> <index> <cycle>" per event) and DIR/result.txt
// Exit status: 0 done, 3 not done after MAX_CYCLES, 4 the controller flagged an error.
//
// Field offsets and sizes come from the Python layouts as -D definitions (see
// hdl/flow/verilator.py): BANDWIDTH, LATENCY, DEPTH, AR_*, R_*, W_*.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "Vaccel_top.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

namespace {

// Bit fields of ports of any Verilator type (CData/SData/IData/QData or VlWide<N>).
template <typename T>
void put(T& port, int lo, int width, uint64_t v) {
    const uint64_t mask = width >= 64 ? ~0ull : ((1ull << width) - 1);
    port = static_cast<T>((static_cast<uint64_t>(port) & ~(mask << lo)) | ((v & mask) << lo));
}
template <std::size_t N>
void put(VlWide<N>& port, int lo, int width, uint64_t v) {
    for (int done = 0; done < width;) {
        const int b = lo + done, w = b / 32, off = b % 32;
        const int n = std::min(32 - off, width - done);
        const uint32_t m = n == 32 ? 0xffffffffu : ((1u << n) - 1);
        const uint32_t bits = static_cast<uint32_t>(v >> done) & m;
        port[w] = (port[w] & ~(m << off)) | (bits << off);
        done += n;
    }
}
template <typename T>
uint64_t get(const T& port, int lo, int width) {
    const uint64_t mask = width >= 64 ? ~0ull : ((1ull << width) - 1);
    return (static_cast<uint64_t>(port) >> lo) & mask;
}
template <std::size_t N>
uint64_t get(const VlWide<N>& port, int lo, int width) {
    uint64_t v = 0;
    for (int done = 0; done < width;) {
        const int b = lo + done, w = b / 32, off = b % 32;
        const int n = std::min(32 - off, width - done);
        const uint32_t m = n == 32 ? 0xffffffffu : ((1u << n) - 1);
        v |= static_cast<uint64_t>((port[w] >> off) & m) << done;
        done += n;
    }
    return v;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::vector<uint8_t> out;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::fprintf(stderr, "harness: cannot open %s\n", path.c_str());
        std::exit(2);
    }
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
    return out;
}

struct Request {
    uint64_t arrive;  // first cycle its beats may start
    uint64_t addr, bytes, word;
};

struct Cursor {
    uint64_t addr, left, word_left, word;
};

struct Beat {
    bool valid = false;
    bool fresh = false;  // starts the front request
    bool gap = false;    // fresh, first beat straddles two bus blocks: no beat this cycle
    Cursor cur{};
    uint64_t count = 0;
};

struct Dram {
    std::vector<uint8_t> mem;
    std::deque<Request> waiting;  // accepted, not started (delay line + FIFO)
    std::deque<uint64_t> acks;    // cycles of write acknowledgements
    bool busy = false;
    Cursor cursor{};

    uint8_t byte(uint64_t a) const {
        if (a >= mem.size()) {
            std::fprintf(stderr, "harness: DRAM read at %llu beyond %zu bytes\n",
                         static_cast<unsigned long long>(a), mem.size());
            std::exit(5);
        }
        return mem[a];
    }

    // The beat of cycle t, if any. `extra` is a request accepted in this very cycle
    // (LATENCY 0), not yet in `waiting`.
    Beat beat(uint64_t t, const Request* extra) const {
        Beat b;
        if (busy) {
            b.valid = true;
            b.cur = cursor;
        } else {
            const Request* src = nullptr;
            if (!waiting.empty() && waiting.front().arrive <= t) src = &waiting.front();
            else if (extra && extra->arrive <= t) src = extra;
            if (!src) return b;
            b.valid = b.fresh = true;
            b.cur = {src->addr, src->bytes, std::min(src->word, src->bytes), src->word};
        }
        b.count = std::min<uint64_t>(b.cur.word_left, BANDWIDTH);
        if (b.fresh && b.cur.addr % BANDWIDTH + b.count > BANDWIDTH) {
            b.valid = false;
            b.gap = true;
        }
        return b;
    }

    void advance(const Beat& b) {
        if (b.gap) {  // the straddling request's first block taken: its beats from next cycle
            cursor = b.cur;
            busy = true;
            waiting.pop_front();
            return;
        }
        const Cursor& c = b.cur;
        const bool word_last = c.word_left <= BANDWIDTH;
        const uint64_t left = c.left - b.count;
        cursor = {c.addr + b.count, left,
                  word_last ? std::min(c.word, left) : c.word_left - b.count, c.word};
        busy = c.left != b.count;
        if (b.fresh) waiting.pop_front();
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 6) {
        std::fprintf(stderr, "usage: %s DIR MAX_CYCLES [VCD FROM TO]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const uint64_t max_cycles = std::strtoull(argv[2], nullptr, 10);
    Dram dram;
    dram.mem = read_file(dir + "/dram.bin");
    const std::vector<uint8_t> imem = read_file(dir + "/imem.bin");
    const size_t instructions = imem.size() / 64;
    uint64_t base[4], count[4];
    {
        FILE* f = std::fopen((dir + "/streams.txt").c_str(), "r");
        if (!f) return 2;
        for (int e = 0; e < 4; e++) {
            unsigned long long b, c;
            if (std::fscanf(f, "%llu %llu", &b, &c) != 2) return 2;
            base[e] = b;
            count[e] = c;
        }
        std::fclose(f);
    }

    Verilated::commandArgs(1, argv);
    auto* top = new Vaccel_top;
#if VM_TRACE
    VerilatedVcdC* vcd = nullptr;
    uint64_t vcd_from = 0, vcd_to = 0;
    if (argc == 6) {
        Verilated::traceEverOn(true);
        vcd = new VerilatedVcdC;
        top->trace(vcd, 99);
        vcd->open(argv[3]);
        vcd_from = std::strtoull(argv[4], nullptr, 10);
        vcd_to = std::strtoull(argv[5], nullptr, 10);
    }
#else
    if (argc == 6) {
        std::fprintf(stderr, "harness: built without --trace; no VCD\n");
        return 2;
    }
#endif

    // The four instruction read ports: the address of cycle t is latched before the clock
    // edge, its data is driven after it (inputs changed together with the edge would be seen
    // by the registers that edge updates).
    uint64_t fetch_addr[4] = {0, 0, 0, 0};
    auto latch = [&]() {
        fetch_addr[0] = top->imem_load_addr;
        fetch_addr[1] = top->imem_compute_addr;
        fetch_addr[2] = top->imem_post_addr;
        fetch_addr[3] = top->imem_store_addr;
    };
    auto load_word = [&](auto& port, uint64_t addr) {
        for (int w = 0; w < 16; w++) {
            uint32_t v = 0;
            if (addr < instructions) std::memcpy(&v, &imem[addr * 64 + 4 * w], 4);
            port[w] = v;
        }
    };
    auto fetch = [&]() {
        load_word(top->imem_load_data, fetch_addr[0]);
        load_word(top->imem_compute_data, fetch_addr[1]);
        load_word(top->imem_post_data, fetch_addr[2]);
        load_word(top->imem_store_data, fetch_addr[3]);
    };

    top->clk = 0;
    top->rst = 1;
    top->start = 0;
    top->eval();
    for (int i = 0; i < 2; i++) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->rst = 0;
    top->load_base = base[0];
    top->load_count = count[0];
    top->compute_base = base[1];
    top->compute_count = count[1];
    top->post_base = base[2];
    top->post_count = count[2];
    top->store_base = base[3];
    top->store_count = count[3];
    top->ar_ready = 1;
    top->w_ready = 1;
    top->r_valid = 0;
    top->b = 0;
    top->start = 1;
    top->eval();
    latch();
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->start = 0;
    fetch();

    FILE* trace = std::fopen((dir + "/trace.txt").c_str(), "w");
    const char* names[4] = {"load", "compute", "post", "store"};
    int status = 3;
    uint64_t t = 0;
    for (; t <= max_cycles; t++) {
        // Settle the DRAM's inputs: they depend on its state and, with LATENCY 0, on this
        // cycle's requests and write beats.
        Beat beat;
        bool ack = false;
        for (int pass = 0; pass < 4; pass++) {
            Request now{};
            const Request* extra = nullptr;
            if (LATENCY == 0 && top->ar_valid && top->ar_ready) {
                now = {t, get(top->ar_payload, AR_ADDR, 32), get(top->ar_payload, AR_BYTES, 16),
                       get(top->ar_payload, AR_WORD, 16)};
                extra = &now;
            }
            const Beat want = dram.beat(t, extra);
            const bool want_ack =
                (!dram.acks.empty() && dram.acks.front() == t) ||
                (LATENCY == 0 && top->w_valid && get(top->w_payload, W_LAST, 1));
            const bool ready = dram.waiting.size() < DEPTH;
            if (pass > 0 && want.valid == beat.valid && want.gap == beat.gap && want.count == beat.count &&
                want.cur.addr == beat.cur.addr && want_ack == ack && ready == top->ar_ready)
                break;
            beat = want;
            ack = want_ack;
            top->ar_ready = ready;
            top->b = ack;
            top->r_valid = beat.valid;
            if (beat.valid) {
                for (int k = 0; k < BANDWIDTH; k++)
                    put(top->r_payload, R_DATA + 8 * k, 8,
                        k < static_cast<int>(beat.count) ? dram.byte(beat.cur.addr + k) : 0);
                put(top->r_payload, R_COUNT, R_COUNT_BITS, beat.count);
                put(top->r_payload, R_WORD_LAST, 1, beat.cur.word_left <= BANDWIDTH);
                put(top->r_payload, R_LAST, 1, beat.cur.left == beat.count);
            }
            top->eval();
            if (LATENCY > 0) break;  // the inputs depend on the DRAM's state only
        }
#if VM_TRACE
        if (vcd && t >= vcd_from && t <= vcd_to) vcd->dump(2 * t);
#endif
        // Sample this cycle's outputs.
        const bool start[4] = {top->trace_load_start, top->trace_compute_start,
                               top->trace_post_start, top->trace_store_start};
        const uint64_t start_index[4] = {top->trace_load_start_index,
                                         top->trace_compute_start_index,
                                         top->trace_post_start_index, top->trace_store_start_index};
        const bool done[4] = {top->trace_load_done, top->trace_compute_done,
                              top->trace_post_done, top->trace_store_done};
        const uint64_t done_index[4] = {top->trace_load_done_index, top->trace_compute_done_index,
                                        top->trace_post_done_index, top->trace_store_done_index};
        for (int e = 0; e < 4; e++) {
            if (start[e])
                std::fprintf(trace, "%s s %llu %llu\n", names[e],
                             static_cast<unsigned long long>(start_index[e]),
                             static_cast<unsigned long long>(t));
            if (done[e])
                std::fprintf(trace, "%s d %llu %llu\n", names[e],
                             static_cast<unsigned long long>(done_index[e]),
                             static_cast<unsigned long long>(t));
        }
        if (top->error) {
            status = 4;
            break;
        }
        if (top->done) {
            status = 0;
            break;
        }
        if (top->ar_valid && top->ar_ready)
            dram.waiting.push_back({t + LATENCY, get(top->ar_payload, AR_ADDR, 32),
                                    get(top->ar_payload, AR_BYTES, 16),
                                    get(top->ar_payload, AR_WORD, 16)});
        if (beat.valid || beat.gap) dram.advance(beat);
        if (!dram.acks.empty() && dram.acks.front() == t) dram.acks.pop_front();
        if (top->w_valid) {
            const uint64_t addr = get(top->w_payload, W_ADDR, 32);
            const uint64_t en = get(top->w_payload, W_EN, BANDWIDTH);
            for (int k = 0; k < BANDWIDTH; k++)
                if (en >> k & 1) {
                    if (addr + k >= dram.mem.size()) {
                        std::fprintf(stderr, "harness: DRAM write at %llu beyond %zu bytes\n",
                                     static_cast<unsigned long long>(addr + k), dram.mem.size());
                        return 5;
                    }
                    dram.mem[addr + k] = get(top->w_payload, W_DATA + 8 * k, 8);
                }
            if (LATENCY > 0 && get(top->w_payload, W_LAST, 1)) dram.acks.push_back(t + LATENCY);
        }
        latch();
        top->clk = 1;
        top->eval();
#if VM_TRACE
        if (vcd && t >= vcd_from && t <= vcd_to) vcd->dump(2 * t + 1);
#endif
        top->clk = 0;
        fetch();
    }
    std::fclose(trace);

    FILE* out = std::fopen((dir + "/dram.bin").c_str(), "wb");
    std::fwrite(dram.mem.data(), 1, dram.mem.size(), out);
    std::fclose(out);
    FILE* res = std::fopen((dir + "/result.txt").c_str(), "w");
    std::fprintf(res, "status %d\ncycle %llu\ntotal_cycles %llu\nstalled %d\n", status,
                 static_cast<unsigned long long>(t),
                 static_cast<unsigned long long>(top->cycle), static_cast<int>(top->stalled));
    const uint64_t busy[4] = {top->load_busy_cycles, top->compute_busy_cycles,
                              top->post_busy_cycles, top->store_busy_cycles};
    const uint64_t blocked[4] = {top->load_blocked_cycles, top->compute_blocked_cycles,
                                 top->post_blocked_cycles, top->store_blocked_cycles};
    for (int e = 0; e < 4; e++)
        std::fprintf(res, "%s_busy_cycles %llu\n%s_blocked_cycles %llu\n", names[e],
                     static_cast<unsigned long long>(busy[e]), names[e],
                     static_cast<unsigned long long>(blocked[e]));
    std::fclose(res);
#if VM_TRACE
    if (vcd) vcd->close();
#endif
    top->final();
    delete top;
    return status;
}
