// Package bench measures the backup pipeline against Azurite and the Key
// Vault emulator (issue 6 point 6): backup MB/s against a raw azblob upload
// of the same bytes with the same parallelism, records/s against raw
// aztables reads, peak RSS per backup size, Key Vault wraps per backup and,
// where rclone is installed, `rclone copy` through a crypt remote (with our
// parallelism and with rclone's defaults), plus a files-only backup reading
// the same local copy rclone reads. BenchmarkSmallFiles is the issue's
// 2,000 × 256 KiB case. It holds only benchmarks; CI's test script does not
// run them:
//
//	BENCH_SIZES=256MiB,1GiB BENCH_RECORDS=50000 \
//	  go test -run='^$' -bench='Backup$' -benchtime=1x -timeout=60m ./internal/backup/bench/
//	BENCH_SMALLFILES=2000 BENCH_SMALLFILE_SIZE=256KiB \
//	  go test -run='^$' -bench=SmallFiles -benchtime=1x -timeout=20m ./internal/backup/bench/
package bench
