// Command azuritesave measures what one table write costs Azurite once it
// holds many entities (docs/BENCHMARKS.md, "Why the ratios fall at 10
// GiB"): Azurite keeps every table in one in-memory database and, while
// anything changed, writes the whole of it to disk every 5 s, so the job's
// own bookkeeping (a restore's progress every 10 s, heartbeats, lease
// renewals) costs it a full save each.
//
//	go run ./cmd/azuritesave -entities 200000
//
// It fills one table, then as many entities again into a second (as a
// restore's target), then reports Azurite's CPU over 60 s idle and over
// 60 s with one tiny upsert into a third table every 5 s.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

func main() {
	n := flag.Int("entities", 200000, "entities per filled table")
	flag.Parse()
	if err := run(context.Background(), *n); err != nil {
		fmt.Fprintln(os.Stderr, "azuritesave:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int) error {
	dir, err := os.MkdirTemp("", "azuritesave-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	az, err := azurite.Start(ctx, azurite.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer az.Stop()
	ts, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return err
	}
	for _, name := range []string{"Source", "Target"} {
		c0, t0 := az.CPUTime(), time.Now()
		if err := fill(ctx, ts.NewClient(name), n); err != nil {
			return err
		}
		fmt.Printf("%d entities into %s: %.1f s, Azurite CPU %.1f s\n", n, name, time.Since(t0).Seconds(), (az.CPUTime() - c0).Seconds())
	}
	time.Sleep(12 * time.Second) // the last save
	c0 := az.CPUTime()
	time.Sleep(60 * time.Second)
	fmt.Printf("60 s idle: Azurite CPU %.1f s\n", (az.CPUTime() - c0).Seconds())
	beat := ts.NewClient("Beat")
	if _, err := beat.CreateTable(ctx, nil); err != nil {
		return err
	}
	c0 = az.CPUTime()
	for i := range 12 {
		e, _ := json.Marshal(map[string]any{"PartitionKey": "p", "RowKey": "r", "Beat": i})
		if _, err := beat.UpsertEntity(ctx, e, nil); err != nil {
			return err
		}
		time.Sleep(5 * time.Second)
	}
	fmt.Printf("60 s, one tiny upsert every 5 s: Azurite CPU %.1f s\n", (az.CPUTime() - c0).Seconds())
	return nil
}

// fill upserts n entities in transactions of 100, 4 at a time, as the
// restore and LR do.
func fill(ctx context.Context, t *aztables.Client, n int) error {
	if _, err := t.CreateTable(ctx, nil); err != nil {
		return err
	}
	batches := make(chan []aztables.TransactionAction)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 4 {
		wg.Go(func() {
			for b := range batches {
				if _, err := t.SubmitTransaction(ctx, b, nil); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	var b []aztables.TransactionAction
	for i := range n {
		e, err := json.Marshal(map[string]any{"PartitionKey": "p", "RowKey": fmt.Sprintf("%08d", i),
			"Name": "asset name here", "Value": 3.25, "Count": i, "Note": "some property text of a typical length for an asset record"})
		if err != nil {
			return err
		}
		b = append(b, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: e})
		if len(b) == 100 || i == n-1 {
			batches <- b
			b = nil
		}
	}
	close(batches)
	wg.Wait()
	return first
}
