// Package restore runs restores and verifications of backups (API.md §2
// "Restores and verification"): the Restores API ([Service.Start],
// [Service.List], [Service.Get]; the routes are internal/edge/api's), one
// delivery of a restore job ([Service.RunJob]),
// the verify-then-write pipeline between them and the sweep of stuck
// restores ([Service.Sweep]).
//
// # One attempt
//
//	load the Restores row (source tenant, restoreId)
//	  succeeded or failed            -> ack: a redelivery never runs a restore twice
//	  running, heartbeat fresh       -> another attempt is at work: retry later
//	                                    (the last delivery is acknowledged)
//	  queued, or running but stale   -> continue (a crashed attempt is restarted)
//	take the TARGET tenant's lease (the one backups take, holder
//	  "restore:<restoreId>"; dry runs too), so no backup or other restore runs on it
//	row -> running (ETag-conditional; a lost race means another worker has it)
//	load the backup row (must be completed) and its manifest
//	unwrap the data key ONCE with exactly the recorded key version
//	unless dryRun: open the local spool; records larger than its limit are
//	  refused here, before anything is written
//	pass 1, verify: every chunk of both streams downloaded (bounded, parallel),
//	  authenticated; the records and files framing decoded completely;
//	  unless dryRun, the records' chunks (ciphertext) and each file's header
//	  (sealed) spooled, within the limit; a file of at most 1 MiB is kept
//	  whole in the spool with its header (own budget, the limit again), any
//	  other file's content staged on its target blob as uncommitted
//	  (invisible) blocks with ids unique to the attempt; counts checked
//	  against the backup row
//	dryRun -> succeeded, progress = the verified counts
//	pass 2, write, from the spool only (never the backups container): the
//	  records authenticated again and upserted in batches, each kept file
//	  written in one request, each staged file's block list committed,
//	  both with the spooled properties; then, once every
//	  write succeeded, replace prunes what the backup lacks. A failed pass 1
//	  commits nothing; the service discards uncommitted blocks after 7 days.
//	  A failure in pass 2 says how far it got (records upserted, files
//	  committed, pruning).
//	row -> succeeded, progress = the backup's records, files, bytes
//
// # Failures
//
// The row switch, the lease, start, heartbeat, commit and fail-or-retry
// are the job lifecycle of internal/job, shared with backups. A permanent
// failure (job.IsPermanent: integrity, an unusable customer key, a backup
// that vanished, a full spool) marks the row failed with the contract's
// {code, message}. Any other (storage or Key Vault unavailable, the target
// tenant busy, the host ending the invocation) clears the heartbeat so the
// redelivered message restarts the row at once, up to the queue's
// maxDequeueCount, then fails it. A crash leaves a running row whose
// heartbeat goes stale: the next delivery restarts it from pass 1, which is safe because pass 2 only
// upserts and prunes to the backup's content. When no delivery is left
// (the last one crashed), [Service.Sweep], run from a timer, fails the
// row once its heartbeat is older than SweepGrace.
//
// # Keys
//
// A customer-key backup's row records the customer's Entra tenant; the
// restore signs in there whether or not BYOK is still on, so turning BYOK
// off never strands a backup: only the customer's own key controls
// (disable, delete, revoke) do. Rows without it use the current settings.
//
// # Verify before write
//
// Nothing is written to the target until pass 1 has authenticated every
// chunk and decoded every record and file header, so tampering of any
// kind (flipped byte, missing, swapped, reordered or truncated chunk, a
// chunk of another backup, an altered manifest) fails with
// IntegrityCheckFailed and leaves the target untouched. Pass 2 reads only
// the spool, so chunks deleted or changed in the backups container after
// pass 1 can't leave the target half written. The spool holds ciphertext
// (records chunks as stored, file headers sealed with a key that lives
// only in memory) and pass 2 authenticates everything it reads back.
package restore
