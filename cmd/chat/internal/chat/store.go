package chat

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store keeps each room's recent messages.
type Store interface {
	// Append gives recs their IDs (increasing, unique across rooms) and
	// stores them. When it returns nil the records are durable to the
	// store's promise; the room broadcasts only after that.
	Append(room string, recs []*Record) error
	// Recent returns at most limit of room's newest records with an ID above
	// since, oldest first.
	Recent(room string, since uint64, limit int) ([]Record, error)
	// Rooms lists the rooms that have history.
	Rooms() ([]string, error)
	Close() error
}

// MemStore keeps history in memory only: it is lost on exit. It backs
// -data "" and the tests.
type MemStore struct {
	mu    sync.Mutex
	keep  int
	seq   uint64
	rooms map[string][]Record
}

// NewMemStore returns a store that keeps keep messages per room.
func NewMemStore(keep int) *MemStore {
	return &MemStore{keep: keep, seq: firstID(), rooms: map[string][]Record{}}
}

// firstID is where a new store starts numbering: the current Unix time in
// microseconds. IDs then keep growing across a restart with an empty store,
// so a client resuming with an ID from before can never mistake a new
// message for one it has already shown. (2^53, the largest integer a
// JavaScript client holds exactly, is about the year 2255 in microseconds.)
func firstID() uint64 { return uint64(time.Now().UnixMicro()) }

// Append implements Store.
func (s *MemStore) Append(room string, recs []*Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.rooms[room]
	for _, r := range recs {
		s.seq++
		r.ID = s.seq
		l = append(l, *r)
	}
	if s.keep > 0 && len(l) > s.keep {
		l = slices.Clone(l[len(l)-s.keep:])
	}
	s.rooms[room] = l
	return nil
}

// Recent implements Store.
func (s *MemStore) Recent(room string, since uint64, limit int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.rooms[room]
	i := len(l)
	for i > 0 && l[i-1].ID > since && len(l)-i < limit {
		i--
	}
	return slices.Clone(l[i:]), nil
}

// Rooms implements Store.
func (s *MemStore) Rooms() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for r := range s.rooms {
		out = append(out, r)
	}
	slices.Sort(out)
	return out, nil
}

// Close implements Store.
func (s *MemStore) Close() error { return nil }

// BoltStore keeps history in a bbolt file. Every Append is one transaction
// committed with fsync (bbolt's default), so a record whose Append returned
// nil survives a crash of the process or of the machine.
type BoltStore struct {
	db   *bolt.DB
	keep int
}

var roomsBucket = []byte("rooms")

// ErrStoreLocked is returned (wrapped) by OpenBoltStore when another
// process holds the database's lock: another server uses the directory.
var ErrStoreLocked = errors.New("chat: history database is locked by another process")

// OpenBoltStore opens (creating it and dir if needed) dir/history.db.
func OpenBoltStore(dir string, keep int) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "history.db")
	// The timeout turns "another server uses this -data directory" into an
	// error instead of a silent hang on the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrStoreLocked)
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(roomsBucket)
		if err == nil && b.Sequence() == 0 {
			err = b.SetSequence(firstID())
		}
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &BoltStore{db: db, keep: keep}, nil
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Append implements Store.
func (s *BoltStore) Append(room string, recs []*Record) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(roomsBucket)
		b, err := rooms.CreateBucketIfNotExists([]byte(room))
		if err != nil {
			return err
		}
		for _, r := range recs {
			// The parent bucket's sequence numbers messages across all
			// rooms, so an ID names one message server-wide.
			id, err := rooms.NextSequence()
			if err != nil {
				return err
			}
			r.ID = id
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put(idKey(id), v); err != nil {
				return err
			}
		}
		return s.prune(b)
	})
}

// prune drops all but the newest keep records of one room.
func (s *BoltStore) prune(b *bolt.Bucket) error {
	if s.keep <= 0 {
		return nil
	}
	c := b.Cursor()
	k, _ := c.Last()
	for i := 1; i < s.keep && k != nil; i++ {
		k, _ = c.Prev()
	}
	if k == nil {
		return nil
	}
	oldest := slices.Clone(k)
	var drop [][]byte
	for k, _ := c.First(); k != nil && string(k) < string(oldest); k, _ = c.Next() {
		drop = append(drop, slices.Clone(k))
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Recent implements Store.
func (s *BoltStore) Recent(room string, since uint64, limit int) ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(roomsBucket).Bucket([]byte(room))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) <= since {
				break
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("room %q record %x: %w", room, k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}

// Rooms implements Store.
func (s *BoltStore) Rooms() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(roomsBucket).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// Close implements Store. bbolt commits are synchronous, so there is nothing
// left to flush; Close releases the file lock.
func (s *BoltStore) Close() error {
	if s.db == nil {
		return errors.New("chat: store already closed")
	}
	err := s.db.Close()
	s.db = nil
	return err
}
