package envelope

import "github.com/twinit/byok-backup/internal/errcode"

// ErrIntegrity is the one error for every authentication failure: a flipped
// bit, a reordered, duplicated, dropped, swapped or resized chunk, a missing
// or extra final chunk, a manifest that does not match the chunks or is not
// authentic, a wrong data key, or a tenant or backup id other than the one
// expected. It deliberately says nothing about which check failed, so a
// tampering attacker learns nothing from it (age's stream.go does the same).
//
// It is an *errcode.Error with code IntegrityCheckFailed; match it with
// errors.Is.
var ErrIntegrity error = &errcode.Error{
	Code:    errcode.IntegrityCheckFailed,
	Message: "The backup failed to decrypt and authenticate: it may be corrupted or tampered with. Restore from another backup and check who can write to the backups container.",
}

// ErrUnsupportedFormat means the bytes are not a manifest of this format, or
// are of a format version this build cannot read. It is distinct from
// [ErrIntegrity] so that a backup written by a newer service version is not
// reported as tampered with.
var ErrUnsupportedFormat error = &errcode.Error{
	Code:    errcode.IntegrityCheckFailed,
	Message: "The backup's manifest is not in a format this service version can read: it was written by a newer version of the service or replaced by something else. Restore it with a current version of the service.",
}
