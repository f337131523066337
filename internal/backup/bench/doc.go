// Package bench measures the backup pipeline against Azurite and the Key
// Vault emulator (issue 6 point 6): backup MB/s against a raw azblob upload
// of the same bytes with the same parallelism, records/s against raw
// aztables reads, peak RSS per backup size, Key Vault wraps per backup and,
// where rclone is installed, `rclone copy` through a crypt remote. It holds
// only a benchmark; CI's test script does not run it:
//
//	BENCH_SIZES=256MiB,1GiB BENCH_RECORDS=50000 \
//	  go test -run='^$' -bench=. -benchtime=1x -timeout=60m ./internal/backup/bench/
package bench
