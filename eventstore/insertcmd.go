package eventstore

import (
	"context"
	"errors"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The event id reservations of a group commit (up to 1,000 per append) are
// written with an insert command the store encodes itself, run with
// Database.RunCommand, rather than with Collection.InsertMany. InsertMany
// marshals every document on its own (a value writer and a bytes.Buffer
// each) and, for a document that has an _id, decodes the _id back through
// a 4 KiB bufio.Reader: for an append of 1,000 events about 4.5 MiB of
// garbage, a sixth of what the whole request allocated (cmd/abusebench,
// "append of 1,000 events of 4 KiB"). One command of ~150 bytes a
// reservation is marshalled once.
//
// What InsertMany did besides, this does too: the collection's write
// concern goes in the command (WithWriteConcern; RunCommand applies none of
// its own); the documents are split into commands that stay far under
// MongoDB's 16 MiB command limit and 100,000 writes (InsertMany splits by
// the 48 MB message limit); write errors come back with their index among
// all the documents; and a command that failed on the network, or that the
// server labels a retryable write, is run once more, as the driver retries
// a retryable write once. The retry may find documents of the first try
// written: they are reported as duplicate-key write errors, which reserve
// resolves as its own (takeReservation: same place, same content).

// insertChunkBytes and insertChunkDocs bound one insert command (a
// variable for tests, which split a few documents into several commands).
var (
	insertChunkBytes = 8 << 20
	insertChunkDocs  = 50000
)

// bsonAppender is a document that encodes itself, as the driver would
// encode its struct.
type bsonAppender interface {
	appendBSON(dst []byte, key string) []byte // as an element named key of a document or array
	bsonSize() int                            // appendBSON's size, or a little more
}

// insertUnordered inserts docs into coll, unordered, and returns the write
// errors, each with its index in docs. An error is an unknown outcome (some
// documents may be written), or the server refused the command as a whole.
func insertUnordered[D bsonAppender](ctx context.Context, db *mongo.Database, coll string, wc *writeconcern.WriteConcern, docs []D) (mongo.WriteErrors, error) {
	var failed mongo.WriteErrors
	for start := 0; start < len(docs); {
		end, size := start, 0
		for end < len(docs) && end-start < insertChunkDocs && (end == start || size+docs[end].bsonSize() <= insertChunkBytes) {
			size += docs[end].bsonSize()
			end++
		}
		cmd := insertCommand(coll, wc, docs[start:end], size)
		var err error
		for try := 0; try < 2; try++ {
			if err = db.RunCommand(ctx, cmd).Err(); err == nil || !retryableWrite(err) {
				break
			}
		}
		var we mongo.WriteException
		switch {
		case err == nil:
		case !errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0:
			return nil, err
		default:
			for _, e := range we.WriteErrors {
				e.Index += start
				failed = append(failed, e)
			}
		}
		start = end
	}
	return failed, nil
}

// insertCommand encodes {insert, documents, ordered: false, writeConcern}
// in one buffer of its size.
func insertCommand[D bsonAppender](coll string, wc *writeconcern.WriteConcern, docs []D, size int) bson.Raw {
	dst := make([]byte, 0, size+len(coll)+128)
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "insert", coll)
	aidx, dst := bsoncore.AppendArrayElementStart(dst, "documents")
	var key [20]byte
	for i, d := range docs {
		dst = d.appendBSON(dst, string(strconv.AppendInt(key[:0], int64(i), 10)))
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, aidx)
	dst = bsoncore.AppendBooleanElement(dst, "ordered", false)
	if wc != nil {
		widx, d := bsoncore.AppendDocumentElementStart(dst, "writeConcern")
		switch w := wc.W.(type) {
		case int:
			d = bsoncore.AppendInt32Element(d, "w", int32(w))
		case string:
			d = bsoncore.AppendStringElement(d, "w", w)
		}
		if wc.Journal != nil {
			d = bsoncore.AppendBooleanElement(d, "j", *wc.Journal)
		}
		dst, _ = bsoncore.AppendDocumentEnd(d, widx)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// retryableWrite is what the driver retries a retryable write once for: a
// network error, or an error the server labels so.
func retryableWrite(err error) bool {
	var se mongo.ServerError
	return mongo.IsNetworkError(err) || errors.As(err, &se) && se.HasErrorLabel("RetryableWriteError")
}
