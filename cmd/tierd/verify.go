package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

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
	// Marker says what was wrong with the marker of a good object (missing, or which field
	// differs from the record), and whether verify rewrote it.
	Marker string `json:"marker,omitempty"`
	// Repair says what verify --repair did about a failed entry.
	Repair string `json:"repair,omitempty"`
}

func newVerifyCmd(g *globals) *cobra.Command {
	var tier string
	var asJSON, repair bool
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
daemon has offloaded it as a new version. The marker of every good object (what
catalog rebuild reads) is compared with its record; a missing or different one is
rewritten (reported only while a daemon runs).

With --repair (the daemon stopped), an entry whose object is missing or whose bytes
differ is repaired when a good copy is left: the local file (same size and CRC-32C as
the record was made from) or another tier's verified copy. The bad object, its marker and
its record are removed, and the next pass (run, run --once) copies the segment again from
the nearest good holder. An entry with no good copy left is kept and reported as
NO GOOD COPY (exit 1). Exits 1 if any entry fails (its object is missing or its bytes
differ, and --repair did not remove it) or any file diverged, else 3 if any entry could
not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			if repair && a.cat == nil {
				return usagef("verify --repair needs the catalog, which a running tierd holds: stop it first")
			}
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
			bad, gone, unreadable, verified, rewritten, badMarkers, repaired, noCopy := 0, 0, 0, 0, 0, 0, 0, 0
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
					if repair {
						from, rerr := a.repair(cmd.Context(), rec)
						switch {
						case rerr != nil:
							return rerr
						case from == "":
							res.Repair = "NO GOOD COPY left (no local file or other tier with the recorded bytes): record kept"
							noCopy++
						default:
							res.Repair = "removed; the next pass copies it again from " + from
							repaired++
						}
					}
				default:
					// The object is good: is its marker (what a rebuild of the catalog
					// reads) there and the same as the record?
					t, _ := a.tier(rec.Tier)
					why, merr := catalog.CheckMarker(cmd.Context(), a.cfg.Node, t.Backend, rec)
					switch {
					case merr != nil:
						res.Marker = "could not be read: " + merr.Error()
					case why != "" && a.cat == nil:
						res.Marker = why + " (stop the daemon and run verify again to rewrite it)"
						badMarkers++
					case why != "":
						res.Marker = why + ": rewritten"
						rewritten++
					}
					if a.cat != nil {
						// The record and its marker stay equal (a rebuild from markers
						// reproduces the catalog).
						rec.Verified = timeNow()
						if err := a.cat.WriteMarker(cmd.Context(), t.Backend, rec); err != nil {
							return err
						}
						if err := a.cat.Put(rec); err != nil {
							return err
						}
					}
				}
				if js != nil {
					return js.elem(res)
				}
				var err2 error
				switch {
				case res.OK && res.Marker != "":
					_, err2 = fmt.Fprintf(stdout, "ok    %s:%s (marker %s)\n", rec.Tier, rec.Key, res.Marker)
				case res.OK:
					_, err2 = fmt.Fprintf(stdout, "ok    %s:%s\n", rec.Tier, rec.Key)
				case res.Gone:
					_, err2 = fmt.Fprintf(stdout, "gone  %s:%s: %s\n", rec.Tier, rec.Key, res.Error)
				case res.Unreadable:
					_, err2 = fmt.Fprintf(stdout, "UNREADABLE %s:%s: %s\n", rec.Tier, rec.Key, res.Error)
				case res.Repair != "":
					_, err2 = fmt.Fprintf(stdout, "FAIL  %s:%s: %s; repair: %s\n", rec.Tier, rec.Key, res.Error, res.Repair)
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
				}{{"checked", checked}, {"failed", bad}, {"unreadable", unreadable}, {"gone", gone}, {"diverged", diverged},
					{"markers_rewritten", rewritten}, {"markers_wrong", badMarkers}, {"repaired", repaired}, {"no_good_copy", noCopy}} {
					js.key(kv.k)
					js.value(kv.v)
				}
				js.close('}')
				if err := js.end(); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(stdout, "%d checked, %d failed, %d could not be read, %d removed while being verified, %d local files diverged\n", checked, bad, unreadable, gone, diverged)
				if repair {
					fmt.Fprintf(stdout, "repair: %d removed to be copied again, %d with NO GOOD COPY left\n", repaired, noCopy)
				}
				if rewritten+badMarkers > 0 {
					fmt.Fprintf(stdout, "markers missing or differing from their records: %d rewritten, %d left (a daemon runs)\n", rewritten, badMarkers)
				}
			}
			var errs []error
			switch {
			case noCopy > 0:
				errs = append(errs, fmt.Errorf("%d of %d catalog entries failed verification and have NO GOOD COPY left anywhere (%d repaired)", noCopy, checked, repaired))
			case bad > repaired:
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
	cmd.Flags().BoolVar(&repair, "repair", false, "remove a bad object and its record when a good copy is left, for the next pass to copy again (daemon stopped)")
	return cmd
}

// repair removes rec's bad object (its marker first), and its record, when a good copy of
// the segment is left, which it names ("" and nothing removed when there is none): the
// local file with the size and CRC-32C rec was made from, or another tier's copy that
// verifies.
func (a *app) repair(ctx context.Context, rec catalog.Record) (from string, err error) {
	from = a.goodLocal(ctx, rec)
	if from == "" {
		for _, t := range a.tiers {
			other, err := a.cat.Get(t.Name, rec.Key)
			if t.Name == rec.Tier || err != nil || other.LocalCRC32C != rec.LocalCRC32C || other.LocalSize != rec.LocalSize {
				continue
			}
			if a.verifyWithRetries(ctx, other) == nil {
				from = "tier " + t.Name
				break
			}
		}
	}
	if from == "" {
		a.log.Error("NO GOOD COPY: a tier's object does not match its record and neither the local file nor another tier has the recorded bytes",
			zap.String("tier", rec.Tier), zap.Stringer("key", rec.Key), zap.String("source", rec.Source), zap.String("rel", rec.Rel))
		return "", nil
	}
	t, _ := a.tier(rec.Tier)
	if err := a.cat.DeleteMarker(ctx, t.Backend, rec.Key); err != nil {
		return "", err
	}
	if err := t.Backend.Delete(ctx, rec.Key); err != nil {
		return "", err
	}
	if err := a.cat.Delete(rec.Tier, rec.Key); err != nil {
		return "", err
	}
	if err := a.cat.ResetDue(); err != nil { // the segment is wanted on rec.Tier again
		return "", err
	}
	a.log.Warn("repair: removed a bad copy; the next pass copies the segment again", zap.String("tier", rec.Tier), zap.Stringer("key", rec.Key), zap.String("from", from))
	return from, nil
}

// goodLocal returns "local file PATH" if the local file rec was made from is there with
// the recorded size and CRC-32C, else "".
func (a *app) goodLocal(ctx context.Context, rec catalog.Record) string {
	for _, s := range a.srcs {
		if s.Name != rec.Source {
			continue
		}
		path, err := segment.LocalPath(s.Root, rec.Rel)
		if err != nil {
			return ""
		}
		f, err := os.Open(path)
		if err != nil {
			return ""
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.Size() != rec.LocalSize {
			return ""
		}
		crc, err := segment.Checksum(ctx, f, fi.Size(), a.pool)
		if err != nil || crc != rec.LocalCRC32C {
			return ""
		}
		return "local file " + path
	}
	return ""
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
