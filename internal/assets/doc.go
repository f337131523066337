// Package assets is a tenant's Assets as a backup source and a restore
// target (API.md §3): records in the `Assets` table (PartitionKey =
// tenant, RowKey = asset id) and files in the `assets` container (blobs
// `<tenant>/<path>`), plus the plaintext stream format that carries them
// inside the encrypted envelope.
//
// # Ports and adapters
//
// This package is the domain: [Record], [File], the stream codec, and the
// interfaces the services use: [Source] (backup), [Target] (restore) and
// [Store] (both, plus whole-file writes for seeding). It imports no Azure
// SDK. The Azure adapter is assets/azure; an in-memory store for tests is
// assets/mem; assets/assetstest holds the two to the same behaviour.
//
// # Stream format
//
// All integers are unsigned LEB128 varints (uvarint), minimal, unless
// fixed-width big-endian is stated; a string is a uvarint length and that
// many bytes of valid UTF-8.
//
//	stream  = "TWAS" version(0x01) *record *file end
//	record  = 'R' uvarint(len) body            ; len ≤ 4 MiB
//	  body  = rowKey:string uvarint(n) n*(name:string type:byte value)
//	file    = 'F' uvarint(len) header content  ; len ≤ 64 KiB
//	  header = path:string uvarint(size) contentType:string
//	           contentEncoding:string contentLanguage:string
//	           contentDisposition:string cacheControl:string
//	           uvarint(m) m*(name:string value:string)
//	  content = exactly size bytes
//	end     = 'E' uvarint(len) uvarint(records) uvarint(files) uvarint(bytes)
//
// Values by type byte: 1 String string; 2 Int32 4 bytes; 3 Int64 8 bytes;
// 4 Double 8 bytes IEEE 754 bits (NaN, ±Inf kept); 5 Boolean 1 byte 0|1;
// 6 DateTime 8 bytes signed Unix seconds + 4 bytes nanoseconds (< 10⁹);
// 7 Guid string (8-4-4-4-12 hex, case kept); 8 Binary uvarint length +
// bytes. Records ascend strictly by RowKey and files by path in
// [CompareKeys] order; properties ascend by name and metadata by name in
// byte order, names unique. Empty content properties mean "not set". The
// end frame's counts must equal what precedes it, and the input must end
// right after it. The same assets therefore always encode to the same
// bytes, and a decoder rejects anything else with a [FormatError]
// (IntegrityCheckFailed). Paths are tenant-relative, so a stream restores
// into any tenant.
//
// # Writing (restore)
//
// A [RecordWriter] upserts (replace semantics per entity, so a restored
// record has exactly the backup's properties) in transactions of up to
// 100 in the Azure adapter, retrying one by one when a transaction fails;
// [Store] PutFile uploads from a stream of known size with bounded memory.
//
// # Replace
//
// A `replace` restore also deletes the target's records and files that the
// backup lacks, with a [Pruner] per kind, in one decode pass after the
// verification pass:
//
//	rw := store.NewRecordWriter(target)
//	rp := store.NewRecordPruner(target); fp := store.NewFilePruner(target)
//	for kind, err := dec.Next(); err != io.EOF; kind, err = dec.Next() {
//	    record: rw.Put(rec); rp.Keep(rec.RowKey)
//	    file:   rw.Flush() once; store.PutFile(target, f, dec.Content()); fp.Keep(f.Path)
//	}
//	rw.Flush(); rp.Finish(); fp.Finish()
//
// `merge` is the same without the pruners.
package assets
