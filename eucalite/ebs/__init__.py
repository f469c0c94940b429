"""Storage controller: EBS-style volumes and snapshots, exported over iSCSI or as files."""
