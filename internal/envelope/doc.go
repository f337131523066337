// Package envelope is the backup format: a manifest plus streams of chunks,
// each chunk sealed with AES-256-GCM under a key derived from the backup's
// own data key. The byte-level specification is docs/FORMAT.md; this
// package is its reference implementation and imports nothing from Azure.
//
// # Keys
//
// Every backup gets a fresh [DataKey] ([NewDataKey]). Its bytes leave the
// package only through [DataKey.Bytes], to be wrapped by a keywrap.Wrapper;
// a restore turns the unwrapped bytes back into a key with
// [DataKeyFromBytes]. [DataKey.Destroy] zeroes it. Writers and readers hold
// only subkeys derived with HKDF-SHA-256 (payload, manifest MAC, key
// commitment) and zero them when done.
//
// # Writing
//
//	dk, _ := envelope.NewDataKey()
//	wrapped, _ := wrapper.Wrap(ctx, ref, dk.Bytes())
//	w, _ := envelope.NewWriter(dk, tenant, backupID, envelope.NewKeyRef(src, wrapped), sink, &envelope.WriterOptions{ChunkSize: n})
//	dk.Destroy()
//	records, _ := w.Create(ctx, 0)   // io.WriteCloser; sealed chunks go to sink.PutChunk
//	... write, records.Close()
//	files, _ := w.Create(ctx, 1)
//	... write, files.Close()
//	manifest, _ := w.Finish()        // store after every chunk is stored
//
// The [Sink] owns each sealed buffer it is given and returns it with
// [Writer.Release] when its upload is done; how many uploads it lets run at
// once bounds memory (chunk size × parallelism).
//
// # Reading
//
//	m, _ := envelope.ParseManifest(b) // no key needed: m.Key says which key to unwrap with
//	key, _ := wrapper.Unwrap(ctx, refFor(m.Key), m.Key.Wrapped()) // exactly m.Key.KeyID's version
//	dk, _ := envelope.DataKeyFromBytes(key); clear(key)
//	r, err := envelope.Open(m, dk, tenant, backupID) // ErrIntegrity on any mismatch
//	dk.Destroy()
//	err = r.Verify(ctx, source, 4)                  // every chunk, no output
//	s, _ := r.Stream(ctx, 0, source)                 // io.Reader of stream 0
//	plain, err := r.OpenChunk(0, i, sealed)          // one chunk, for parallel work
//
// # Errors
//
// Every authentication failure is [ErrIntegrity], without detail of which
// check failed; bytes that are not this format or version are
// [ErrUnsupportedFormat]; Source and Sink errors are passed through wrapped.
// Both sentinels are *errcode.Error with code IntegrityCheckFailed.
package envelope

//go:generate go run gen_vectors.go
