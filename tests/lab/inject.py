"""Send raw Ethernet frames from inside a lab namespace, as a hostile VM or underlay node would.

Run as `ip netns exec NS python inject.py IFACE RATE < frames` (one frame a line, in hex); RATE
is frames per second (0: as fast as the socket takes them). One AF_PACKET socket for the whole
batch: scapy's per-frame `sendp` costs a socket and a lookup per frame. Prints
`<sent> <refused>`: a frame the kernel refuses to send (a runt, or over the MTU) is counted,
not fatal.
"""
from __future__ import annotations

import socket
import sys
import time


def main() -> None:
    iface, rate = sys.argv[1], float(sys.argv[2])
    frames = [bytes.fromhex(line) for line in sys.stdin.read().split()]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = refused = 0
    start = time.monotonic()
    for i, frame in enumerate(frames):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            s.send(frame)
            sent += 1
        except OSError:
            refused += 1
    print(sent, refused)


if __name__ == "__main__":
    main()
