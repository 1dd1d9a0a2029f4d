"""The `ebpfjit` command, pcap input/output and the README examples."""
