package storetest_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/internal/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Shutdown()
	os.Exit(code)
}

var dbNameRE = regexp.MustCompile(`^t_[0-9a-f]{12}$`)

func TestClient(t *testing.T) {
	t.Parallel()

	c1, db1 := storetest.Client(t)
	c2, db2 := storetest.Client(t)

	if db1 == db2 {
		t.Fatalf("two calls gave the same database %q", db1)
	}

	for _, name := range []string{db1, db2} {
		if !dbNameRE.MatchString(name) {
			t.Errorf("database name %q does not match %s", name, dbNameRE)
		}
	}

	ctx := t.Context()

	if _, err := c1.Database(db1).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "one"}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}

	// The other client sees the write in db1, and db2 is empty.
	var got bson.M
	if err := c2.Database(db1).Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil {
		t.Fatalf("FindOne: %v", err)
	}

	if got["v"] != "one" {
		t.Errorf("got %v", got)
	}

	n, err := c2.Database(db2).Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Errorf("CountDocuments in fresh database = %d, %v; want 0", n, err)
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()

	var name string

	t.Run("inner", func(t *testing.T) {
		c, db := storetest.Client(t)
		name = db

		if _, err := c.Database(db).Collection("c").InsertOne(t.Context(), bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	})

	c, _ := storetest.Client(t)

	names, err := c.ListDatabaseNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}

	if slices.Contains(names, name) {
		t.Errorf("database %s still exists after its test ended: %v", name, names)
	}
}

func TestURI(t *testing.T) {
	t.Parallel()

	u1 := storetest.URI(t)
	u2 := storetest.URI(t)

	if u1 != u2 {
		t.Errorf("URI changed between calls: %q, %q", u1, u2)
	}

	if env := os.Getenv(storetest.EnvURI); env != "" && u1 != env {
		t.Errorf("URI = %q, want %s=%q", u1, storetest.EnvURI, env)
	}

	if !strings.HasPrefix(u1, "mongodb://") && !strings.HasPrefix(u1, "mongodb+srv://") {
		t.Errorf("URI = %q", u1)
	}
}
