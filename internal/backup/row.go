package backup

import (
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// errTakenOver: the row changed under a running attempt (another attempt
// took it over); this attempt must stop and not commit.
var errTakenOver = catalog.ErrTakenOver

// rowKeeper serialises one attempt's writes to its Backups row.
type rowKeeper = catalog.Keeper[*catalog.Backup]

// detail is the contract's {code, message} for a failed backup.
func detail(err error) errcode.Detail {
	code, msg := errcode.Public(err)
	return errcode.Detail{Code: code, Message: msg}
}
