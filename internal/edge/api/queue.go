package api

import (
	"context"
	"log/slog"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/restore"
)

func delivery(req *invoke.QueueRequest) jobqueue.Delivery {
	return jobqueue.Delivery{MessageID: req.Message.ID, DequeueCount: req.Message.DequeueCount}
}

// BackupWorker is the BackupWorker queue function: it decodes a
// `backup-jobs` message and runs [backup.Service.RunJob]. A nil svc leaves
// the function unwired.
func BackupWorker(svc *backup.Service, log *slog.Logger) server.QueueFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, req *invoke.QueueRequest) error {
		job, err := jobqueue.DecodeBackupJob(req.Message.Text)
		if err != nil {
			// Fail the invocation: after maxDequeueCount deliveries the host
			// moves the message to backup-jobs-poison, where an operator sees
			// it. Acknowledging it would lose it without a trace.
			log.ErrorContext(ctx, "backup job message is malformed; it will end in the poison queue", "messageId", req.Message.ID, "err", err)
			return errcode.Wrap(err, errcode.InvalidRequest, "The backup job message is malformed.")
		}
		return svc.RunJob(ctx, job, delivery(req))
	}
}

// RestoreWorker is the RestoreWorker queue function: it decodes a
// `restore-jobs` message and runs [restore.Service.RunJob]. A nil svc
// leaves the function unwired.
func RestoreWorker(svc *restore.Service, log *slog.Logger) server.QueueFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, req *invoke.QueueRequest) error {
		job, err := jobqueue.DecodeRestoreJob(req.Message.Text)
		if err != nil {
			// Redelivery can't fix a malformed message, but acknowledging it
			// would lose it without a trace: fail the invocation so the host
			// moves it to restore-jobs-poison after maxDequeueCount.
			log.ErrorContext(ctx, "restore job message is invalid; it will end in the poison queue", "messageId", req.Message.ID, "err", err)
			return errcode.Wrap(err, errcode.InvalidRequest, "The restore job message is malformed.")
		}
		return svc.RunJob(ctx, job, delivery(req))
	}
}
