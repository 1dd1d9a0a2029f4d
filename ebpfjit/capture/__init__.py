"""Packet captures: `pcap` (pcap/pcapng readers and writer, link types to Ethernet) and `stream`
(chunked runs of a program over a capture through the C batch path).

Imports: (nothing)
"""
