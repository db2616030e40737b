package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tierd/tierd/catalog"
)

// records returns the catalog's records of tier ("" = all): from the catalog itself, or,
// while a running daemon holds it, from the daemon's /catalog endpoint. It holds them all:
// commands that may list a large catalog use walkRecords.
func (a *app) records(ctx context.Context, tier string) ([]catalog.Record, error) {
	var out []catalog.Record
	err := a.walkRecords(ctx, tier, func(r catalog.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// walkRecords calls fn for each record of tier ("" = all), sorted by tier, then key, as
// records does but holding one page of records at a time (the catalog's, or one line of
// the running daemon's /catalog stream).
func (a *app) walkRecords(ctx context.Context, tier string, fn func(catalog.Record) error) error {
	if a.cat != nil {
		return a.cat.WalkRecords(tier, fn)
	}
	if a.cfg.HTTP.Listen == "" {
		return errors.New("the catalog is locked by a running tierd and http.listen is off, so it cannot be asked")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute) // a stream of a million records takes a while
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.cfg.HTTP.Listen+"/catalog", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the catalog is locked by a running tierd, and asking it failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /catalog from the running tierd: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), catalog.MaxMarkerSize+1)
	for sc.Scan() {
		rec, err := catalog.DecodeMarker(sc.Bytes())
		if err != nil {
			return fmt.Errorf("record from the running tierd: %w", err)
		}
		if tier == "" || rec.Tier == tier {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// openReader opens the app for commands that read: with the catalog if it is free,
// without it (asking the daemon) if a running tierd holds it.
func openReader(ctx context.Context, g *globals) (*app, error) {
	a, err := openApp(ctx, g, true)
	if errors.Is(err, catalog.ErrLocked) {
		return openApp(ctx, g, false)
	}
	return a, err
}
