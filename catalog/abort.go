package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// AbortFile is the name of the abort marker in state_dir.
const AbortFile = "abort"

// StartRun marks the start of a run by creating state_dir/abort (file and directory
// fsynced). It reports crashed = true if the marker was already there: the previous run
// did not reach CleanExit, so the catalog may disagree with the tiers and the daemon must
// reconcile (docs/DESIGN.md invariant 5). The marker is left in place either way.
func (c *Catalog) StartRun() (crashed bool, err error) {
	path := filepath.Join(c.dir, AbortFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if errors.Is(err, fs.ErrExist) {
		c.log.Warn("abort marker found: the previous run did not exit cleanly", zap.String("path", path))
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("create abort marker: %w", err)
	}
	_, err = fmt.Fprintf(f, "tierd pid %d started %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(c.dir)
	}
	if err != nil {
		return false, fmt.Errorf("create abort marker %s: %w", path, err)
	}
	return false, nil
}

// CleanExit removes the abort marker (and fsyncs state_dir), recording that this run ended
// cleanly. Call it last, after every job is finished or aborted. Removing a missing
// marker is not an error.
func (c *Catalog) CleanExit() error {
	path := filepath.Join(c.dir, AbortFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove abort marker: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		return fmt.Errorf("remove abort marker %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory, making entries created or removed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
