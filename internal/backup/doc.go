// Package backup makes a tenant's backups: it snapshots the tenant's assets
// (records and files), encrypts them into the envelope format under a fresh
// data key, uploads the chunks in parallel and commits the catalog row. It
// also holds the work behind the three functions that drive it: one
// delivery of a backup job ([Service.RunJob]), the scheduler
// ([Service.RunScheduler]) and the Backups API ([Service.RequestOnce],
// [Service.List], [Service.Get]), plus the garbage sweep ([Service.Sweep]).
// The routes, JSON bodies and invocation payloads are internal/edge/api's.
//
// # One attempt
//
//	load row (tenant, backupId)
//	  none                          -> adopt (create it queued) if the tenant has a Tenants row,
//	                                   else fail the invocation, writing nothing (-> poison queue)
//	  completed or failed           -> ack, nothing to do (redelivery)
//	  queued, its delayed retry not yet due -> ack (a duplicate delivery)
//	  running, heartbeat fresh      -> another attempt is at work: retry later
//	  queued, or running but stale  -> continue (a crashed attempt is taken over)
//	acquire the tenant lease (holder = backupId)
//	  held by another backup        -> retry later; on the final dequeue mark failed (Conflict)
//	row -> running (new attempt id, ETag-conditional), heartbeat every HeartbeatEvery
//	delete everything under backups/<tenant>/<backupId>/ (abandoned attempts)
//	data key; wrap it once: customer key, or platform key (fallback / BYOK off)
//	  customer key failed transiently within BYOK_TRANSIENT_GRACE
//	                                -> new message hidden for the retry delay,
//	                                   row -> queued with lastError, ack
//	stream 0 "records" and stream 1 "files" (assets codec), written concurrently,
//	  sealed chunks -> bounded upload pool -> <tenant>/<backupId>/<attempt>/chunks/<stream>/<index>
//	manifest -> <tenant>/<backupId>/<attempt>/manifest
//	row -> completed with key, counts and manifest blob   (the commit point)
//
// Everything around the work (the row switch, the lease, start, heartbeat,
// commit, fail-or-retry) is the job lifecycle of internal/job, shared with
// restores. A failure that may pass on retry leaves the row running with its
// heartbeat cleared, so the redelivered message takes it over at once; a
// permanent one (job.IsPermanent: the strict BYOK refusal, bad data) or a
// failure on the final dequeue marks it failed with {code, message}. A crash leaves a running row whose
// heartbeat goes stale: the redelivered message takes it over after
// StaleAfter, and the sweep fails rows nobody took over.
//
// # Memory
//
// Chunks are sealed in place and handed to the upload pool, which holds at
// most Parallelism of them in flight; each of the two streams holds at most
// two more while it fills them, so memory is about ChunkSize ×
// (Parallelism + 4), whatever the backup's size. Records are read a table
// page at a time. Files are read ahead: up to Parallelism files of at most
// 1 MiB each are fetched concurrently and held whole until the encoder
// takes them in listing order (at most Parallelism × 1 MiB more, 4 MiB by
// default); larger files are streamed one at a time when their turn comes.
//
// # Garbage
//
// Anything under a backup prefix without a completed row is never restored,
// but it is deleted only where a row says it is garbage: the sweep deletes
// the blobs of backups failed for more than FailedRetention and the attempt
// directories of completed backups other than the committed one (whose
// manifest must be there). Prefixes without a row are only reported, and a
// per-tenant breaker (MaxDeleteFraction) stops a run that would delete many
// backups of one tenant.
package backup
