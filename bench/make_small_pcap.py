"""Write N small (64-byte) Ethernet frames to a pcap, for the `run --pcap` / `compare` throughput
measurement in bench/README.md: the example's 40 frames cut or zero-padded to 64 bytes, repeated,
timestamps 1 µs apart.   usage: python bench/make_small_pcap.py N OUT.pcap"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ebpfjit.capture import pcap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    n, out = int(sys.argv[1]), sys.argv[2]
    example = os.path.join(HERE, "..", "ebpfjit", "examples", "traffic.pcap")
    frames = [p.data[:64].ljust(64, b"\0") for p in pcap.read_file(example)]
    with open(out, "wb") as f:
        writer = pcap.PcapWriter(f)
        for i in range(n):
            writer.write_raw(frames[i % len(frames)], 1_700_000_000_000_000_000 + i * 1000, 64)


if __name__ == "__main__":
    main()
