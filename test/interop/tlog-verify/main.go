// tlog-verify checks a VaultMesh ledger with Go's golang.org/x/mod/sumdb/note and sumdb/tlog only: the checkpoint's
// signature, the tiles against the checkpoint root, the entry bundles against the level-0 tiles, an inclusion proof
// and a consistency proof from the API. It shares no code with VaultMesh.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o tlog-verify .
//	tlog-verify -log https://cc.example.com/ledger/scans -vkey "$(vaultmesh ledger vkey)" -token "$TOKEN" \
//	    [-api https://cc.example.com -name scans -id <scan id>] [-old old-checkpoint.txt]
package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var token string

func get(url string) []byte {
	req, err := http.NewRequest("GET", url, nil)
	check(err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != 200 {
		fail("GET %s: %s: %s", url, resp.Status, body)
	}
	return body
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// openCheckpoint verifies a checkpoint note with the log's key and parses origin, size and root.
func openCheckpoint(msg []byte, verifier note.Verifier) tlog.Tree {
	n, err := note.Open(msg, note.VerifierList(verifier))
	check(err)
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint origin is not %s", verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	check(err)
	root, err := base64.StdEncoding.DecodeString(lines[2])
	check(err)
	var h tlog.Hash
	if len(root) != len(h) {
		fail("root hash is %d bytes", len(root))
	}
	copy(h[:], root)
	return tlog.Tree{N: size, Hash: h}
}

// tiles reads c2sp.org/tlog-tiles paths (Go names them tile/8/<L>/<N> and tile/8/data/<N>) and keeps the tiles
// that TileHashReader has verified, so each is fetched once.
type tiles struct {
	prefix string
	saved  map[tlog.Tile][]byte
}

func (t tiles) Height() int { return 8 }
func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		if data, ok := t.saved[tile]; ok {
			out[i] = data
		} else {
			out[i] = get(t.prefix + "/" + c2spPath(tile))
		}
	}
	return out, nil
}
func (t tiles) SaveTiles(ts []tlog.Tile, data [][]byte) {
	for i, tile := range ts {
		t.saved[tile] = data[i]
	}
}

func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	return "tile/" + strings.Replace(p, "data/", "entries/", 1)
}

func main() {
	logURL := flag.String("log", "", "log prefix, e.g. https://cc.example.com/ledger/scans")
	vkey := flag.String("vkey", "", "the log's verifier key")
	api := flag.String("api", "", "center base URL for proofs (optional)")
	name := flag.String("name", "scans", "log name for the API")
	id := flag.String("id", "", "envelope id whose inclusion proof to check (with -api)")
	old := flag.String("old", "", "file with an older checkpoint to check consistency from (with -api)")
	flag.StringVar(&token, "token", "", "Bearer token (ledger:read)")
	flag.Parse()

	verifier, err := note.NewVerifier(*vkey)
	check(err)
	tree := openCheckpoint(get(*logURL+"/checkpoint"), verifier)
	fmt.Printf("checkpoint: %s size %d root %x\n", verifier.Name(), tree.N, tree.Hash[:])

	// Every hash read through the tiles is checked against the checkpoint root by TileHashReader.
	hr := tlog.TileHashReader(tree, tiles{*logURL, map[tlog.Tile][]byte{}})
	root, err := tlog.TreeHash(tree.N, hr)
	check(err)
	if root != tree.Hash {
		fail("tiles give root %x, the checkpoint %x", root[:], tree.Hash[:])
	}
	fmt.Println("tiles: root reproduced")

	for n := int64(0); n*256 < tree.N; n++ {
		w := tree.N - n*256
		if w > 256 {
			w = 256
		}
		bundle := get(*logURL + "/" + c2spPath(tlog.Tile{H: 8, L: -1, N: n, W: int(w)}))
		for i := int64(0); i < w; i++ {
			if len(bundle) < 2 {
				fail("entry bundle %d ends early", n)
			}
			size := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+size {
				fail("entry bundle %d ends early", n)
			}
			entry := bundle[2 : 2+size]
			bundle = bundle[2+size:]
			want, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, n*256+i)})
			check(err)
			if tlog.RecordHash(entry) != want[0] {
				fail("entry %d does not hash to its level-0 tile hash", n*256+i)
			}
		}
		if len(bundle) != 0 {
			fail("entry bundle %d has %d bytes too many", n, len(bundle))
		}
	}
	fmt.Printf("entries: %d hash to the tiles\n", tree.N)

	if *api != "" && *id != "" {
		var p struct {
			LeafLine  string   `json:"leaf_line"`
			LeafIndex int64    `json:"leaf_index"`
			TreeSize  int64    `json:"tree_size"`
			AuditPath []string `json:"audit_path"`
		}
		check(json.Unmarshal(get(*api+"/api/ledger/proof/"+*id+"?log="+*name), &p))
		if p.TreeSize > tree.N {
			fail("proof for size %d is newer than the checkpoint (%d)", p.TreeSize, tree.N)
		}
		proofRoot, err := tlog.TreeHash(p.TreeSize, hr)
		check(err)
		check(tlog.CheckRecord(hashes(p.AuditPath), p.TreeSize, proofRoot, p.LeafIndex, tlog.RecordHash([]byte(p.LeafLine))))
		fmt.Printf("inclusion: %s is record %d of %d\n", *id, p.LeafIndex, p.TreeSize)
	}

	if *api != "" && *old != "" {
		msg, err := os.ReadFile(*old)
		check(err)
		oldTree := openCheckpoint(msg, verifier)
		var c struct {
			Proof []string `json:"proof"`
		}
		check(json.Unmarshal(get(fmt.Sprintf("%s/api/ledger/consistency?log=%s&old=%d&new=%d", *api, *name, oldTree.N, tree.N)), &c))
		check(tlog.CheckTree(hashes(c.Proof), tree.N, tree.Hash, oldTree.N, oldTree.Hash))
		fmt.Printf("consistency: size %d extends size %d\n", tree.N, oldTree.N)
	}
	fmt.Println("ok")
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		b, err := hex.DecodeString(s)
		check(err)
		if len(b) != len(out[i]) {
			fail("hash %q is not 32 bytes", s)
		}
		copy(out[i][:], b)
	}
	return out
}
