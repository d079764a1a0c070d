package eventstore

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Commit observers: the seam through which a verifiable log (package tlog)
// follows the log without growing the Store.
//
// WithCommitObserver registers a function that is called with the events of
// every commit the memory image applies, strictly in position order and
// exactly once per commit: at start while the image is built, for this
// process's own appends before they are acknowledged, for other instances'
// commits as the tailer reads them, and for imports. It is called with the
// image's write lock held, so it must be fast (hash and remember, no I/O),
// must not call back into the Store, and must not keep or modify the
// events' byte slices. A commit the tailer applies after giving up on a
// missing position (guarantee 5's bounded wait) reaches the observer too, so
// the observer sees that gap and can report it.
//
// WithAppendReceipt registers a function that, given the last position of
// an append, returns the size and root hash of the tree after it, for
// AppendResult.TreeSize and RootHash. It is called once per append, after
// the commit was applied, outside any lock of the Store.

// WithCommitObserver sets the commit observer (see above).
func WithCommitObserver(f func(events []Event)) Option {
	return func(s *Store) error {
		if f == nil {
			return errors.New("nil commit observer")
		}
		s.img.observer = f
		return nil
	}
}

// WithAppendReceipt sets how AppendResult's TreeSize and RootHash are filled
// (see above). Without it they stay zero.
func WithAppendReceipt(f func(lastPosition int64) (treeSize int64, rootHash string)) Option {
	return func(s *Store) error {
		if f == nil {
			return errors.New("nil append receipt")
		}
		s.receipt = f
		return nil
	}
}

// observe tells the observer about a commit; the image calls it with its
// write lock held, in position order.
func (im *image) observe(events []Event) {
	if im.observer != nil {
		im.observer(events)
	}
}

// withReceipt fills res's tree fields.
func (s *Store) withReceipt(res AppendResult) AppendResult {
	if s.receipt != nil {
		res.TreeSize, res.RootHash = s.receipt(res.LastPosition)
	}
	return res
}

// Database returns the database the store keeps its log in, for components
// that keep their own collections beside it, such as the verifiable log's
// checkpoints (package tlog).
func (s *Store) Database() *mongo.Database { return s.db }
