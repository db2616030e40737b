package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Local state: what the scans saw of the broker's files, kept on disk so that neither the
// daemon's memory nor a scan's work grows with the number of files (docs/DESIGN.md invariant
// 9). Only closed files are kept (files the broker has moved past: the layout says so),
// never the active ones, whose size changes at every scan.
//
//	bLocal source\x00rel -> localValue   a closed local file: kind, size, mtime, sealed or not yet
//	bSeqs  source\x00seq -> seqValue     a sequence directory at its last listing
//
// A sequence's files are the local entries under source\x00seq/ (every layout's files sit
// directly in their sequence's directory, whose path relative to the source dir is the
// sequence's name).
var (
	bLocal = []byte("local")
	bSeqs  = []byte("seqs")
)

// LocalFile is a closed local file as the last scan saw it.
type LocalFile struct {
	Source  string
	Rel     string // path relative to the source dir, slash-separated
	Kind    string
	Size    int64
	ModTime time.Time
	// Sealed says the file was unchanged across two scans and older than seal_grace
	// (docs/DESIGN.md invariant 1): it may be offloaded. A closed file not sealed yet is
	// remembered with what the scan saw, for the next scan to compare.
	Sealed bool
}

// SeqState is what a scan saw of one sequence directory.
type SeqState struct {
	// DirModTime is the directory's mtime when it was listed: while it is unchanged no
	// file was created, renamed or deleted in it.
	DirModTime time.Time
	// ListedAt is when the directory was listed.
	ListedAt time.Time
	// Settling counts closed files not sealed yet (the next scan must look at them);
	// Sealed counts sealed ones; Open counts files the broker may still write.
	Settling, Sealed, Open int
}

const localValueVersion = 1

// localValue: version(1) | flags(1: bit 0 sealed) | size(8) | mtime T(8) | kind.
func encodeLocal(f LocalFile) []byte {
	v := make([]byte, 0, 18+len(f.Kind))
	var flags byte
	if f.Sealed {
		flags |= 1
	}
	v = append(v, localValueVersion, flags)
	v = binary.BigEndian.AppendUint64(v, uint64(f.Size))
	v = append(v, timeBytes(f.ModTime)...)
	return append(v, f.Kind...)
}

func decodeLocalKV(k, v []byte) (source, rel []byte, f LocalFile, err error) {
	source, rel, ok := bytes.Cut(k, []byte{0})
	if !ok || len(v) < 18 || v[0] != localValueVersion {
		return nil, nil, LocalFile{}, fmt.Errorf("local state entry %q is corrupt", k)
	}
	f = LocalFile{
		Source: string(source), Rel: string(rel), Sealed: v[1]&1 != 0,
		Size: int64(binary.BigEndian.Uint64(v[2:])), ModTime: bytesTime(v[10:18]), Kind: string(v[18:]),
	}
	return source, rel, f, nil
}

// seqValue: version(1) | dir mtime T(8) | listed T(8) | settling(4) | sealed(4) | open(4).
func encodeSeq(s SeqState) []byte {
	v := []byte{localValueVersion}
	v = append(v, timeBytes(s.DirModTime)...)
	v = append(v, timeBytes(s.ListedAt)...)
	v = binary.BigEndian.AppendUint32(v, uint32(s.Settling))
	v = binary.BigEndian.AppendUint32(v, uint32(s.Sealed))
	return binary.BigEndian.AppendUint32(v, uint32(s.Open))
}

func decodeSeq(v []byte) (SeqState, error) {
	if len(v) != 29 || v[0] != localValueVersion {
		return SeqState{}, fmt.Errorf("sequence state %x is corrupt", v)
	}
	return SeqState{
		DirModTime: bytesTime(v[1:9]), ListedAt: bytesTime(v[9:17]),
		Settling: int(binary.BigEndian.Uint32(v[17:])), Sealed: int(binary.BigEndian.Uint32(v[21:])),
		Open: int(binary.BigEndian.Uint32(v[25:])),
	}, nil
}

func localKey(source, rel string) []byte { return []byte(source + "\x00" + rel) }

// Sequence returns the state of sequence seq of source at its last listing; ok is false
// if it was never listed (or was dropped).
func (c *Catalog) Sequence(source, seq string) (st SeqState, ok bool, err error) {
	err = c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bSeqs).Get(localKey(source, seq))
		if v == nil {
			return nil
		}
		ok = true
		st, err = decodeSeq(v)
		return err
	})
	return st, ok, err
}

// LocalFiles returns the closed files of sequence seq of source, in name order. They are
// one sequence's files: a bounded number (the broker deletes the oldest).
func (c *Catalog) LocalFiles(source, seq string) ([]LocalFile, error) {
	prefix := localKey(source, seq+"/")
	var out []LocalFile
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bLocal).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if bytes.IndexByte(k[len(prefix):], '/') >= 0 {
				continue // a deeper directory's file: another sequence
			}
			_, _, f, err := decodeLocalKV(k, v)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local files of %s/%s: %w", source, seq, err)
	}
	return out, nil
}

// Local returns what the last scan saw of the closed local file rel of source; ok is
// false if it knows of no such closed file.
func (c *Catalog) Local(source, rel string) (f LocalFile, ok bool, err error) {
	err = c.db.View(func(tx *bolt.Tx) error {
		k := localKey(source, rel)
		v := tx.Bucket(bLocal).Get(k)
		if v == nil {
			return nil
		}
		ok = true
		_, _, f, err = decodeLocalKV(k, v)
		return err
	})
	return f, ok, err
}

// SeqUpdate is what a scan learnt about one sequence.
type SeqUpdate struct {
	Source, Seq string
	State       SeqState
	// Put are closed files that are new or changed (a new observation, or sealed now).
	Put []LocalFile
	// Drop are files the sequence no longer has as closed files (deleted by the broker or
	// by policy, or active again after a truncation), by Source and Rel.
	Drop []LocalFile
}

// UpdateSequences records ups in one transaction, with the indexes: a file sealed now
// becomes due on every tier that does not hold it; a file that changed or went is no
// longer due where it cannot be had from another tier.
func (c *Catalog) UpdateSequences(ups []SeqUpdate) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		tiers := dueTiers(tx)
		for _, u := range ups {
			for _, f := range u.Drop {
				if err := c.dropLocalTx(tx, tiers, f.Source, f.Rel); err != nil {
					return err
				}
			}
			for _, f := range u.Put {
				if err := c.putLocalTx(tx, tiers, f); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bSeqs).Put(localKey(u.Source, u.Seq), encodeSeq(u.State)); err != nil {
				return fmt.Errorf("record sequence %s/%s: %w", u.Source, u.Seq, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d scanned sequence(s): %w", len(ups), err)
	}
	return nil
}

func (c *Catalog) putLocalTx(tx *bolt.Tx, tiers []string, f LocalFile) error {
	k := localKey(f.Source, f.Rel)
	if old := tx.Bucket(bLocal).Get(k); old != nil {
		_, _, of, err := decodeLocalKV(k, old)
		if err != nil {
			return err
		}
		if of.Sealed && (!f.Sealed || !of.ModTime.Equal(f.ModTime) || of.Size != f.Size) {
			if err := c.unsealTx(tx, tiers, of); err != nil {
				return err
			}
		}
		if of.Sealed && f.Sealed && of.ModTime.Equal(f.ModTime) && of.Size == f.Size {
			return nil // nothing new
		}
	}
	if err := tx.Bucket(bLocal).Put(k, encodeLocal(f)); err != nil {
		return fmt.Errorf("record local file %s/%s: %w", f.Source, f.Rel, err)
	}
	if !f.Sealed {
		return nil
	}
	if err := tx.Bucket(bLAge).Put(lageKey(f.ModTime, f.Source, f.Rel), nil); err != nil {
		return fmt.Errorf("index local file %s/%s: %w", f.Source, f.Rel, err)
	}
	return c.addDueTx(tx, tiers, f.Source, f.Rel, f.Kind, f.Size, f.ModTime)
}

// unsealTx removes the index entries of sealed file f (it changed or went). Its due
// entries stay if a tier holds a copy of the same mtime (the copy can come from there).
func (c *Catalog) unsealTx(tx *bolt.Tx, tiers []string, f LocalFile) error {
	if err := tx.Bucket(bLAge).Delete(lageKey(f.ModTime, f.Source, f.Rel)); err != nil {
		return err
	}
	if c.heldTx(tx, f.Source, f.Rel) {
		return nil
	}
	for _, t := range tiers {
		if err := tx.Bucket(bDue).Delete(dueKey(t, f.ModTime, f.Source, f.Rel)); err != nil {
			return err
		}
	}
	return nil
}

// heldTx reports whether any tier holds a copy of (source, rel).
func (c *Catalog) heldTx(tx *bolt.Tx, source, rel string) bool {
	prefix := holderPrefix(source, rel)
	k, _ := tx.Bucket(bHolders).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

func (c *Catalog) dropLocalTx(tx *bolt.Tx, tiers []string, source, rel string) error {
	k := localKey(source, rel)
	old := tx.Bucket(bLocal).Get(k)
	if old == nil {
		return nil
	}
	_, _, of, err := decodeLocalKV(k, old)
	if err != nil {
		return err
	}
	if of.Sealed {
		if err := c.unsealTx(tx, tiers, of); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bLocal).Delete(k); err != nil {
		return fmt.Errorf("forget local file %s/%s: %w", source, rel, err)
	}
	return nil
}

// DropLocal forgets the local file rel of source (deleted by policy).
func (c *Catalog) DropLocal(source, rel string) error {
	err := c.db.Update(func(tx *bolt.Tx) error { return c.dropLocalTx(tx, dueTiers(tx), source, rel) })
	if err != nil {
		return fmt.Errorf("forget local file %s/%s: %w", source, rel, err)
	}
	return nil
}

// WalkSequences calls fn with the name of every sequence of source the catalog knows, in
// name order, a page at a time (no transaction is held while fn runs).
func (c *Catalog) WalkSequences(source string, fn func(seq string, st SeqState) error) error {
	prefix := localKey(source, "")
	after := prefix
	for {
		type item struct {
			seq string
			st  SeqState
		}
		var page []item
		err := c.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bSeqs).Cursor()
			k, v := cur.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = cur.Next()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(page) < pageSize; k, v = cur.Next() {
				st, err := decodeSeq(v)
				if err != nil {
					return err
				}
				page = append(page, item{string(k[len(prefix):]), st})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sequences of %s: %w", source, err)
		}
		for _, it := range page {
			if err := fn(it.seq, it.st); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = localKey(source, page[len(page)-1].seq)
	}
}

// DropSequence forgets sequence seq of source and its files (its directory is gone).
func (c *Catalog) DropSequence(source, seq string) error {
	files, err := c.LocalFiles(source, seq)
	if err != nil {
		return err
	}
	err = c.db.Update(func(tx *bolt.Tx) error {
		tiers := dueTiers(tx)
		for _, f := range files {
			if err := c.dropLocalTx(tx, tiers, f.Source, f.Rel); err != nil {
				return err
			}
		}
		return tx.Bucket(bSeqs).Delete(localKey(source, seq))
	})
	if err != nil {
		return fmt.Errorf("forget sequence %s/%s: %w", source, seq, err)
	}
	return nil
}

// WalkLocal calls fn for every closed local file of source in name order, a page at a
// time (no transaction is held while fn runs).
func (c *Catalog) WalkLocal(source string, fn func(LocalFile) error) error {
	prefix := localKey(source, "")
	after := prefix
	for {
		var page []LocalFile
		err := c.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bLocal).Cursor()
			k, v := cur.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = cur.Next()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(page) < pageSize; k, v = cur.Next() {
				_, _, f, err := decodeLocalKV(k, v)
				if err != nil {
					return err
				}
				page = append(page, f)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("local files of %s: %w", source, err)
		}
		for _, f := range page {
			if err := fn(f); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = localKey(source, page[len(page)-1].Rel)
	}
}

// pageSize is how many entries a paged walk reads per read transaction: a walk over a
// million entries holds a bounded amount of memory and never keeps a read transaction
// open while its caller works (a long one would stop bbolt from growing its file).
const pageSize = 512
