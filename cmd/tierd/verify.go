package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// verifyResult is one catalog entry checked against its tier.
type verifyResult struct {
	Tier  string      `json:"tier"`
	Key   segment.Key `json:"key"`
	OK    bool        `json:"ok"`
	Error string      `json:"error,omitempty"`
	// Unreadable: the object could not be read (the store failed, after retries): not
	// known to be bad, not checked either.
	Unreadable bool `json:"unreadable,omitempty"`
	// Gone: a running daemon removed or replaced the entry (retention, say) while it was
	// being verified; it is neither checked nor failed.
	Gone bool `json:"gone,omitempty"`
	// Local is set on the result of a local file's check against the newest version the
	// tiers hold of it (Tier and Key name that version's object).
	Local string `json:"local,omitempty"`
}

func newVerifyCmd(g *globals) *cobra.Command {
	var tier string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every catalog entry against its tier, re-reading each object's CRC-32C",
		Long: `Check every catalog entry (of one tier with --tier): the object exists with the
recorded size, the tier's stored CRC-32C matches, and the CRC-32C of all its bytes, read
back, matches too. While a daemon runs, the entries come from it, and one it removes
meanwhile (retention) is reported as gone, not failed. An object the store does not
let it read (errors, cut connections, timeouts; each entry is tried 3 times) is reported
as unreadable, not failed. Then every local file that the tiers hold is compared (size,
then the CRC-32C of its bytes) with the newest version they hold: a file the broker
rewrote after it was offloaded (Kafka's log cleaner) is reported as DIVERGED until the
daemon has offloaded it as a new version. Exits 1 if any entry fails (its object is
missing or its bytes differ) or any file diverged, else 3 if any entry could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			// Streamed: a catalog of a million records is never held whole (with the
			// catalog open; asking a running daemon, its records are read once more to
			// tell versions apart).
			var js *jsonStream
			if asJSON {
				js = newJSONStream(stdout)
				js.open('{')
				js.key("results")
				js.open('[')
			}
			bad, gone, unreadable, verified := 0, 0, 0, 0
			err = a.walkRecords(cmd.Context(), tier, func(rec catalog.Record) error {
				err := a.verifyWithRetries(cmd.Context(), rec)
				if ctxErr := cmd.Context().Err(); ctxErr != nil {
					return ctxErr
				}
				verified++
				res := verifyResult{Tier: rec.Tier, Key: rec.Key, OK: err == nil}
				if err != nil && a.cat == nil {
					// The list came from a running daemon, which may have expired or
					// replaced the entry since.
					still, lerr := a.stillRecorded(cmd.Context(), rec)
					if lerr != nil {
						return lerr
					}
					res.Gone = !still
				}
				switch {
				case res.Gone:
					res.Error = "removed from the catalog while being verified"
					gone++
				case err != nil && !errors.Is(err, errDiffers):
					res.Error, res.Unreadable = err.Error(), true
					unreadable++
				case err != nil:
					res.Error = err.Error()
					bad++
				case a.cat != nil:
					// The record and its marker stay equal (a rebuild from markers
					// reproduces the catalog).
					rec.Verified = timeNow()
					t, _ := a.tier(rec.Tier)
					if err := a.cat.WriteMarker(cmd.Context(), t.Backend, rec); err != nil {
						return err
					}
					if err := a.cat.Put(rec); err != nil {
						return err
					}
				}
				if js != nil {
					return js.elem(res)
				}
				var err2 error
				switch {
				case res.OK:
					_, err2 = fmt.Fprintf(stdout, "ok    %s:%s\n", rec.Tier, rec.Key)
				case res.Gone:
					_, err2 = fmt.Fprintf(stdout, "gone  %s:%s: %s\n", rec.Tier, rec.Key, res.Error)
				case res.Unreadable:
					_, err2 = fmt.Fprintf(stdout, "UNREADABLE %s:%s: %s\n", rec.Tier, rec.Key, res.Error)
				default:
					_, err2 = fmt.Fprintf(stdout, "FAIL  %s:%s: %s\n", rec.Tier, rec.Key, res.Error)
				}
				return err2
			})
			if err != nil {
				return err
			}
			versions, err := a.newVersionView(cmd.Context())
			if err != nil {
				return err
			}
			checked := verified - gone - unreadable
			diverged := 0
			err = a.walkRecords(cmd.Context(), tier, func(rec catalog.Record) error {
				if once, err := versions.newestOnce(rec, tier); err != nil || !once {
					return err
				}
				err := a.checkLocal(cmd.Context(), rec)
				if err != nil && !errors.Is(err, errDiverged) {
					return err
				}
				if err == nil {
					return nil
				}
				diverged++
				msg := strings.TrimPrefix(err.Error(), errDiverged.Error()+": ")
				res := verifyResult{Tier: rec.Tier, Key: rec.Key, Error: msg, Local: a.localPath(rec.Source, rec.Rel)}
				if js != nil {
					return js.elem(res)
				}
				_, err = fmt.Fprintf(stdout, "DIVERGED  %s: %s\n", res.Local, res.Error)
				return err
			})
			if err != nil {
				return err
			}
			if js != nil {
				js.close(']')
				for _, kv := range []struct {
					k string
					v int
				}{{"checked", checked}, {"failed", bad}, {"unreadable", unreadable}, {"gone", gone}, {"diverged", diverged}} {
					js.key(kv.k)
					js.value(kv.v)
				}
				js.close('}')
				if err := js.end(); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(stdout, "%d checked, %d failed, %d could not be read, %d removed while being verified, %d local files diverged\n", checked, bad, unreadable, gone, diverged)
			}
			var errs []error
			if bad > 0 {
				errs = append(errs, fmt.Errorf("%d of %d catalog entries failed verification", bad, checked))
			}
			if diverged > 0 {
				errs = append(errs, fmt.Errorf("%d local files differ from the newest version the tiers hold", diverged))
			}
			if len(errs) == 0 && unreadable > 0 {
				return unreadableError{fmt.Errorf("%d catalog entries could not be read from their tier (the store failed; try again): none checked differed", unreadable)}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "only this tier")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// stillRecorded reports whether the catalog still holds rec as it was.
func (a *app) stillRecorded(ctx context.Context, rec catalog.Record) (bool, error) {
	recs, err := a.records(ctx, rec.Tier)
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if r.Key == rec.Key {
			return r.Size == rec.Size && r.CRC32C == rec.CRC32C, nil
		}
	}
	return false, nil
}

// errDiffers marks a verify failure that is about the object itself (missing, another
// size, other bytes), as opposed to a store that could not be read.
var errDiffers = errors.New("object differs from its catalog record")

// errMissing: the tier says the object does not exist. An object store may say so for a
// moment right after the object was committed (a stale read), so it is asked again.
var errMissing = fmt.Errorf("%w: object missing", errDiffers)

// verifyTries is how many times verify checks an entry whose object could not be read;
// the n-th retry waits n × verifyBackoff.
const (
	verifyTries   = 3
	verifyBackoff = 500 * time.Millisecond
)

// verifyWithRetries checks rec, again while the store fails to let it read the object or
// says it is missing.
func (a *app) verifyWithRetries(ctx context.Context, rec catalog.Record) error {
	var err error
	for try := 1; try <= verifyTries; try++ {
		err = a.verifyRecord(ctx, rec)
		if err == nil || ctx.Err() != nil || (errors.Is(err, errDiffers) && (!errors.Is(err, errMissing) || try == verifyTries)) {
			return err
		}
		if try < verifyTries {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(try) * verifyBackoff):
			}
		}
	}
	return fmt.Errorf("could not read (%d tries): %w", verifyTries, err)
}

func (a *app) verifyRecord(ctx context.Context, rec catalog.Record) error {
	t, err := a.tier(rec.Tier)
	if err != nil {
		return fmt.Errorf("%w: tier no longer configured", errDiffers)
	}
	info, err := t.Backend.Stat(ctx, rec.Key)
	if errors.Is(err, segment.ErrNotFound) {
		return errMissing
	}
	if err != nil {
		return err
	}
	if info.Size != rec.Size {
		return fmt.Errorf("%w: size %d, catalog says %d", errDiffers, info.Size, rec.Size)
	}
	if info.CRC32C != rec.CRC32C {
		return fmt.Errorf("%w: stored CRC-32C %08x, catalog says %08x", errDiffers, info.CRC32C, rec.CRC32C)
	}
	r, err := t.Backend.Open(ctx, rec.Key)
	if err != nil {
		return err
	}
	defer r.Close()
	crc, err := segment.Checksum(ctx, r, info.Size, a.pool)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if crc != rec.CRC32C {
		return fmt.Errorf("%w: CRC-32C of the bytes read back is %08x, catalog says %08x", errDiffers, crc, rec.CRC32C)
	}
	return nil
}
