#include "kiln/io/torch_checkpoint.h"

#include <bit>
#include <cstring>
#include <deque>
#include <functional>
#include <set>

#include "kiln/device.h"
#include "kiln/memory.h"
#include "kiln/ops_elementwise.h"

namespace kiln::io {

static_assert(std::endian::native == std::endian::little, "checkpoint data is read as little-endian");

namespace {

template <class... Parts>
[[noreturn]] void bad(const std::string& path, const Parts&... parts) {
  fail<ValueError>("[torch_checkpoint] '", path, "': ", parts...);
}

template <class T>
T le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// ---- CRC-32 (the zip polynomial), eight bytes a step ----

struct CrcTables {
  uint32_t t[8][256];
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

uint32_t crc32(const uint8_t* p, uint64_t n) {
  static const CrcTables tables;
  const auto& t = tables.t;
  uint32_t c = 0xFFFFFFFFu;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo = le<uint32_t>(p) ^ c, hi = le<uint32_t>(p + 4);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
        t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) c = t[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return ~c;
}

// ---- the zip archive ----
//
// torch.save writes every record STORED (uncompressed) and aligns each record's bytes to 64 for
// memory mapping, so a small reader of the central directory over the MappedFile is enough: it
// hands out pointers into the mapping, so a tensor is copied once (into its array) and kiln needs
// no zip library. libzip would copy every record through its own buffers and add a system library
// to every build for a feature torch does not use. An archive re-packed with compression is
// refused with a message that says so.

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0;
  uint64_t usize = 0;
  uint64_t local_offset = 0;
};

struct ZipRecord {
  uint64_t offset = 0;  // of the bytes in the file
  uint64_t size = 0;
  uint32_t crc = 0;
};

class ZipIndex {
 public:
  ZipIndex(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {
    parse();
  }

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  // Where an entry's bytes lie, checked against its local header and the file.
  ZipRecord locate(const ZipEntry& e) const {
    auto where = [&] { return "zip record '" + e.name + "'"; };
    if (e.flags & 1) bad(path_, where(), " is encrypted");
    if (e.method != 0) {
      bad(path_, where(), " is compressed (method ", e.method, "); torch.save stores records uncompressed, ",
          "so this archive was re-packed: extract and re-zip it without compression (zip -0)");
    }
    if (e.csize != e.usize) bad(path_, where(), " is stored with ", e.csize, " bytes but claims ", e.usize);
    uint64_t h = e.local_offset;
    if (h > cd_offset_ || cd_offset_ - h < 30) bad(path_, where(), " has its local header outside the archive");
    if (le<uint32_t>(data_ + h) != 0x04034b50) bad(path_, where(), " has no local header signature at byte ", h);
    uint64_t n = le<uint16_t>(data_ + h + 26), x = le<uint16_t>(data_ + h + 28);
    uint64_t start = h + 30 + n + x;
    if (start > cd_offset_ || cd_offset_ - start < e.csize) {
      bad(path_, where(), " runs past the end of the stored data (", e.csize, " bytes from byte ", start, ")");
    }
    if (n != e.name.size() || std::memcmp(data_ + h + 30, e.name.data(), n) != 0) {
      bad(path_, where(), " has a different name in its local header");
    }
    return {start, e.csize, e.crc};
  }

  // The bytes of a record, checked against its CRC-32.
  std::string_view read_checked(const ZipEntry& e) const {
    ZipRecord r = locate(e);
    if (crc32(data_ + r.offset, r.size) != r.crc) bad(path_, "zip record '", e.name, "' fails its CRC-32 check");
    return {reinterpret_cast<const char*>(data_ + r.offset), r.size};
  }

 private:
  void parse() {
    // The end-of-central-directory record: 22 bytes and a comment of up to 65535 at the end.
    if (size_ < 22) bad(path_, "zip archive of ", size_, " bytes is truncated (no end of central directory)");
    uint64_t eocd = UINT64_MAX;
    for (uint64_t p = size_ - 22;; --p) {
      if (le<uint32_t>(data_ + p) == 0x06054b50 && p + 22 + le<uint16_t>(data_ + p + 20) == size_) {
        eocd = p;
        break;
      }
      if (p == 0 || size_ - 22 - p >= 65535) break;
    }
    if (eocd == UINT64_MAX) bad(path_, "zip archive is truncated or corrupt: no end of central directory record");
    if (le<uint16_t>(data_ + eocd + 4) != 0 || le<uint16_t>(data_ + eocd + 6) != 0) {
      bad(path_, "multi-part zip archives are not supported");
    }
    uint64_t count = le<uint16_t>(data_ + eocd + 10);
    uint64_t cd_size = le<uint32_t>(data_ + eocd + 12);
    cd_offset_ = le<uint32_t>(data_ + eocd + 16);
    uint64_t cd_end_limit = eocd;
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset_ == 0xFFFFFFFF) {
      // Zip64: a locator just before the record points at the 64-bit end record.
      if (eocd < 20 || le<uint32_t>(data_ + eocd - 20) != 0x07064b50) bad(path_, "zip64 archive has no locator");
      uint64_t z = le<uint64_t>(data_ + eocd - 20 + 8);
      if (z > eocd - 20 || eocd - 20 - z < 56 || le<uint32_t>(data_ + z) != 0x06064b50) {
        bad(path_, "zip64 end of central directory record is missing or outside the archive");
      }
      count = le<uint64_t>(data_ + z + 32);
      cd_size = le<uint64_t>(data_ + z + 40);
      cd_offset_ = le<uint64_t>(data_ + z + 48);
      cd_end_limit = z;
    }
    if (cd_offset_ > cd_end_limit || cd_end_limit - cd_offset_ < cd_size) {
      bad(path_, "zip central directory (", cd_size, " bytes at byte ", cd_offset_, ") lies outside the archive");
    }
    if (count > cd_size / 46) {
      bad(path_, "zip central directory of ", cd_size, " bytes cannot hold ", count, " entries");
    }
    const uint8_t* p = data_ + cd_offset_;
    const uint8_t* end = p + cd_size;
    for (uint64_t i = 0; i < count; ++i) {
      if (end - p < 46 || le<uint32_t>(p) != 0x02014b50) bad(path_, "zip central directory entry ", i, " is corrupt");
      ZipEntry e;
      e.flags = le<uint16_t>(p + 8);
      e.method = le<uint16_t>(p + 10);
      e.crc = le<uint32_t>(p + 16);
      e.csize = le<uint32_t>(p + 20);
      e.usize = le<uint32_t>(p + 24);
      size_t n = le<uint16_t>(p + 28), x = le<uint16_t>(p + 30), c = le<uint16_t>(p + 32);
      e.local_offset = le<uint32_t>(p + 42);
      if (static_cast<size_t>(end - p) - 46 < n + x + c) bad(path_, "zip central directory entry ", i, " is truncated");
      e.name.assign(reinterpret_cast<const char*>(p + 46), n);
      read_zip64_extra(e, p + 46 + n, x);
      p += 46 + n + x + c;
      if (!index_.emplace(e.name, entries_.size()).second) bad(path_, "zip archive holds '", e.name, "' twice");
      entries_.push_back(std::move(e));
    }
  }

  // The zip64 extended-information field holds the 64-bit values whose 32-bit fields are 0xFFFFFFFF.
  void read_zip64_extra(ZipEntry& e, const uint8_t* p, size_t n) {
    while (n >= 4) {
      uint16_t id = le<uint16_t>(p), len = le<uint16_t>(p + 2);
      if (len > n - 4) bad(path_, "zip entry '", e.name, "' has a corrupt extra field");
      if (id == 0x0001) {
        const uint8_t* q = p + 4;
        size_t left = len;
        for (uint64_t* v : {&e.usize, &e.csize, &e.local_offset}) {
          if (*v != 0xFFFFFFFF) continue;
          if (left < 8) bad(path_, "zip entry '", e.name, "' has a short zip64 extra field");
          *v = le<uint64_t>(q);
          q += 8;
          left -= 8;
        }
      }
      p += 4 + len;
      n -= 4 + len;
    }
  }

  const uint8_t* data_;
  uint64_t size_;
  const std::string& path_;
  uint64_t cd_offset_ = 0;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// ---- the objects a checkpoint's pickle builds ----

constexpr uint64_t kMaxRepeatedBytes = uint64_t(1) << 30;

enum class Kind { none, boolean, integer, floating, string, tuple, list, dict, global, storage, tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

// What an allowed global does when called (REDUCE) or stands for.
enum class Fn {
  rebuild_tensor,     // torch._utils._rebuild_tensor(storage, offset, size, stride)
  rebuild_tensor_v2,  // (storage, offset, size, stride, requires_grad, hooks[, metadata])
  rebuild_tensor_v3,  // (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
  rebuild_parameter,  // (tensor, requires_grad, hooks)
  rebuild_parameter_with_state,  // (tensor, requires_grad, hooks, state)
  ordered_dict,
  size,          // torch.Size(tuple)
  storage_type,  // torch.FloatStorage ... (dtype) or torch.storage.UntypedStorage (no dtype)
  dtype,         // torch.float32 ...
};

struct Global {
  const char* module;
  const char* name;
  Fn fn;
  std::optional<Dtype> dtype;
};

const Global kGlobals[] = {
    {"torch._utils", "_rebuild_tensor", Fn::rebuild_tensor, {}},
    {"torch._utils", "_rebuild_tensor_v2", Fn::rebuild_tensor_v2, {}},
    {"torch._utils", "_rebuild_tensor_v3", Fn::rebuild_tensor_v3, {}},
    {"torch._utils", "_rebuild_parameter", Fn::rebuild_parameter, {}},
    {"torch._utils", "_rebuild_parameter_with_state", Fn::rebuild_parameter_with_state, {}},
    {"collections", "OrderedDict", Fn::ordered_dict, {}},
    {"torch", "Size", Fn::size, {}},
    {"torch", "FloatStorage", Fn::storage_type, float32},
    {"torch", "DoubleStorage", Fn::storage_type, float64},
    {"torch", "HalfStorage", Fn::storage_type, float16},
    {"torch", "BFloat16Storage", Fn::storage_type, bfloat16},
    {"torch", "LongStorage", Fn::storage_type, int64},
    {"torch", "IntStorage", Fn::storage_type, int32},
    {"torch", "ShortStorage", Fn::storage_type, int16},
    {"torch", "CharStorage", Fn::storage_type, int8},
    {"torch", "ByteStorage", Fn::storage_type, uint8},
    {"torch", "BoolStorage", Fn::storage_type, bool_},
    {"torch", "ComplexFloatStorage", Fn::storage_type, complex64},
    {"torch.storage", "UntypedStorage", Fn::storage_type, {}},
    {"torch", "UntypedStorage", Fn::storage_type, {}},
    {"torch", "float32", Fn::dtype, float32},
    {"torch", "float", Fn::dtype, float32},
    {"torch", "float64", Fn::dtype, float64},
    {"torch", "double", Fn::dtype, float64},
    {"torch", "float16", Fn::dtype, float16},
    {"torch", "half", Fn::dtype, float16},
    {"torch", "bfloat16", Fn::dtype, bfloat16},
    {"torch", "int64", Fn::dtype, int64},
    {"torch", "long", Fn::dtype, int64},
    {"torch", "int32", Fn::dtype, int32},
    {"torch", "int", Fn::dtype, int32},
    {"torch", "int16", Fn::dtype, int16},
    {"torch", "short", Fn::dtype, int16},
    {"torch", "int8", Fn::dtype, int8},
    {"torch", "uint8", Fn::dtype, uint8},
    {"torch", "uint16", Fn::dtype, uint16},
    {"torch", "uint32", Fn::dtype, uint32},
    {"torch", "uint64", Fn::dtype, uint64},
    {"torch", "bool", Fn::dtype, bool_},
    {"torch", "complex64", Fn::dtype, complex64},
    {"torch", "cfloat", Fn::dtype, complex64},
};

struct Obj {
  Kind kind = Kind::none;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;             // str; a global's "module.name"; a storage's key
  std::vector<Obj*> items;   // tuple and list elements; a dict's keys and values, alternating
  std::unordered_map<std::string, size_t> keys;  // dict: key -> its position in items
  const Global* global = nullptr;
  std::optional<Dtype> dtype;  // a storage's (none when untyped) or a tensor's
  uint64_t nbytes = 0;         // storage
  // tensor
  const Obj* storage = nullptr;
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  bool requires_grad = false;
  bool is_parameter = false;
};

// Owns every object of one checkpoint, so cycles and deep nesting cost nothing to free.
struct Arena {
  std::deque<Obj> objs;
  std::map<std::string, Obj*> storages;  // by key
  Obj* make(Kind k) {
    objs.emplace_back();
    objs.back().kind = k;
    return &objs.back();
  }
};

// Turns one persistent id (the tuple torch.save writes in place of a storage) into a storage.
using PersistentLoad = std::function<Obj*(const Obj* pid, const std::string& where)>;

// ---- the unpickler ----

class Unpickler {
 public:
  Unpickler(Arena& arena, const uint8_t* data, size_t size, const std::string& path, std::string what,
            PersistentLoad persistent_load)
      : arena_(arena), p_(data), n_(size), path_(path), what_(std::move(what)), load_(std::move(persistent_load)) {}

  // Runs to STOP; returns the result.
  Obj* run();
  // Bytes consumed, STOP included.
  size_t consumed() const { return pos_; }

 private:
  template <class... Parts>
  [[noreturn]] void err(const Parts&... parts) const {
    bad(path_, what_, " byte ", at_, ": ", parts...);
  }
  const uint8_t* take(uint64_t k) {
    if (k > n_ - pos_) err("the pickle ends inside opcode 0x", hex(op_), " (", k, " more bytes needed)");
    const uint8_t* q = p_ + pos_;
    pos_ += k;
    return q;
  }
  template <class T>
  T read() {
    return le<T>(take(sizeof(T)));
  }
  static std::string hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }

  Obj* pop() {
    if (stack_.size() <= floor()) err("stack underflow at opcode 0x", hex(op_));
    Obj* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Obj* top() {
    if (stack_.size() <= floor()) err("stack underflow at opcode 0x", hex(op_));
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // The items since the last MARK, which is removed.
  std::vector<Obj*> pop_mark() {
    if (marks_.empty()) err("opcode 0x", hex(op_), " needs a MARK and there is none");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Obj*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Obj* make(Kind k) { return arena_.make(k); }
  Obj* integer(int64_t v) {
    Obj* o = make(Kind::integer);
    o->i = v;
    return o;
  }
  Obj* string(const uint8_t* q, uint64_t k) {
    Obj* o = make(Kind::string);
    o->s.assign(reinterpret_cast<const char*>(q), k);
    return o;
  }
  Obj* tuple(std::vector<Obj*> items) {
    Obj* o = make(Kind::tuple);
    o->items = std::move(items);
    return o;
  }
  Obj* expect(Obj* o, Kind k, const char* what) {
    if (o->kind != k) err(what, " must be a ", kind_name(k), ", not a ", kind_name(o->kind));
    return o;
  }
  Obj* global(const std::string& module, const std::string& name);
  void set_item(Obj* dict, Obj* key, Obj* value);
  Obj* call(Obj* fn, Obj* args);
  Obj* make_tensor(const std::vector<Obj*>& a, std::optional<Dtype> dtype);
  int64_t int_arg(const Obj* o, const char* what) {
    if (o->kind != Kind::integer) err(what, " must be an int, not a ", kind_name(o->kind));
    return o->i;
  }
  std::vector<int64_t> ints_arg(const Obj* o, const char* what) {
    if (o->kind != Kind::tuple && o->kind != Kind::list) err(what, " must be a tuple, not a ", kind_name(o->kind));
    if (o->items.size() > 64) err(what, " has ", o->items.size(), " entries (at most 64 dimensions)");
    std::vector<int64_t> v;
    for (const Obj* x : o->items) {
      int64_t k = int_arg(x, what);
      if (k < 0) err(what, " has a negative entry ", k);
      v.push_back(k);
    }
    return v;
  }

  Arena& arena_;
  const uint8_t* p_;
  size_t n_;
  const std::string& path_;
  std::string what_;
  PersistentLoad load_;
  size_t pos_ = 0, at_ = 0;
  uint8_t op_ = 0;
  std::vector<Obj*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Obj*> memo_;
};

Obj* Unpickler::run() {
  for (;;) {
    at_ = pos_;
    if (pos_ >= n_) err("the pickle ends without a STOP opcode");
    op_ = p_[pos_++];
    switch (op_) {
      case 0x80: {  // PROTO
        uint8_t v = read<uint8_t>();
        if (v > 5) err("pickle protocol ", int(v), " is not supported");
        break;
      }
      case 0x95:  // FRAME: only a hint for buffered readers
        read<uint64_t>();
        break;
      case '.': {  // STOP
        Obj* o = pop();
        return o;
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0':  // POP: an item, or a MARK when none lies above it
        if (stack_.size() > floor()) stack_.pop_back();
        else if (!marks_.empty()) marks_.pop_back();
        else err("POP on an empty stack");
        break;
      case '1': pop_mark(); break;  // POP_MARK
      case '2': stack_.push_back(top()); break;  // DUP
      case 'N': stack_.push_back(make(Kind::none)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Obj* o = make(Kind::boolean);
        o->b = op_ == 0x88;
        stack_.push_back(o);
        break;
      }
      case 'J': stack_.push_back(integer(read<int32_t>())); break;   // BININT
      case 'K': stack_.push_back(integer(read<uint8_t>())); break;   // BININT1
      case 'M': stack_.push_back(integer(read<uint16_t>())); break;  // BININT2
      case 0x8a:    // LONG1
      case 0x8b: {  // LONG4: little-endian two's complement of k bytes
        int64_t k = op_ == 0x8a ? read<uint8_t>() : read<int32_t>();
        if (k < 0 || k > 8) err("an integer of ", k, " bytes does not fit in 64 bits");
        const uint8_t* q = take(static_cast<uint64_t>(k));
        uint64_t u = 0;
        for (int64_t j = 0; j < k; ++j) u |= uint64_t(q[j]) << (8 * j);
        if (k > 0 && k < 8 && (q[k - 1] & 0x80)) u |= ~uint64_t(0) << (8 * k);
        stack_.push_back(integer(static_cast<int64_t>(u)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian
        const uint8_t* q = take(8);
        uint64_t u = 0;
        for (int j = 0; j < 8; ++j) u = (u << 8) | q[j];
        Obj* o = make(Kind::floating);
        o->f = std::bit_cast<double>(u);
        stack_.push_back(o);
        break;
      }
      // Text and bytes (BINUNICODE*, BINSTRING*, BINBYTES*) are all kept as strings.
      case 'X':
      case 'T':
      case 'B': {
        uint64_t k = read<uint32_t>();
        stack_.push_back(string(take(k), k));
        break;
      }
      case 0x8c:
      case 'U':
      case 'C': {
        uint64_t k = read<uint8_t>();
        stack_.push_back(string(take(k), k));
        break;
      }
      case 0x8d:
      case 0x8e: {
        uint64_t k = read<uint64_t>();
        stack_.push_back(string(take(k), k));
        break;
      }
      case '}': stack_.push_back(make(Kind::dict)); break;       // EMPTY_DICT
      case ']': stack_.push_back(make(Kind::list)); break;       // EMPTY_LIST
      case ')': stack_.push_back(tuple({})); break;              // EMPTY_TUPLE
      case 't': stack_.push_back(tuple(pop_mark())); break;      // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t k = op_ - 0x84u;
        if (stack_.size() < floor() + k) err("stack underflow at opcode 0x", hex(op_));
        std::vector<Obj*> items(stack_.end() - static_cast<std::ptrdiff_t>(k), stack_.end());
        stack_.resize(stack_.size() - k);
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case 'l': {  // LIST
        Obj* o = make(Kind::list);
        o->items = pop_mark();
        stack_.push_back(o);
        break;
      }
      case 'd': {  // DICT
        auto items = pop_mark();
        if (items.size() % 2) err("DICT with an odd number of items");
        Obj* o = make(Kind::dict);
        for (size_t j = 0; j < items.size(); j += 2) set_item(o, items[j], items[j + 1]);
        stack_.push_back(o);
        break;
      }
      case 'a': {  // APPEND
        Obj* v = pop();
        expect(top(), Kind::list, "the target of APPEND")->items.push_back(v);
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        Obj* l = expect(top(), Kind::list, "the target of APPENDS");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case 's': {  // SETITEM
        Obj* v = pop();
        Obj* k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) err("SETITEMS with an odd number of items");
        Obj* d = top();
        for (size_t j = 0; j < items.size(); j += 2) set_item(d, items[j], items[j + 1]);
        break;
      }
      case 'q': memo_[read<uint8_t>()] = top(); break;   // BINPUT
      case 'r': memo_[read<uint32_t>()] = top(); break;  // LONG_BINPUT
      case 0x94: memo_[memo_.size()] = top(); break;     // MEMOIZE
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        uint64_t k = op_ == 'h' ? read<uint8_t>() : read<uint32_t>();
        auto it = memo_.find(k);
        if (it == memo_.end()) err("memo entry ", k, " is read before it is written");
        stack_.push_back(it->second);
        break;
      }
      case 'c': {  // GLOBAL: "module\nname\n"
        std::string parts[2];
        for (auto& s : parts) {
          const uint8_t* q = p_ + pos_;
          const void* nl = std::memchr(q, '\n', std::min<size_t>(n_ - pos_, 1024));
          if (!nl) err("GLOBAL without a newline-terminated name");
          size_t k = static_cast<const uint8_t*>(nl) - q;
          s.assign(reinterpret_cast<const char*>(q), k);
          pos_ += k + 1;
        }
        stack_.push_back(global(parts[0], parts[1]));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Obj* name = expect(pop(), Kind::string, "the name of STACK_GLOBAL");
        Obj* module = expect(pop(), Kind::string, "the module of STACK_GLOBAL");
        stack_.push_back(global(module->s, name->s));
        break;
      }
      case 'R':      // REDUCE
      case 0x81: {   // NEWOBJ (cls.__new__(cls, *args))
        Obj* args = expect(pop(), Kind::tuple, op_ == 'R' ? "the arguments of REDUCE" : "the arguments of NEWOBJ");
        Obj* fn = pop();
        if (op_ == 0x81 && (fn->kind != Kind::global || fn->global->fn != Fn::ordered_dict)) {
          err("NEWOBJ is supported only for collections.OrderedDict");
        }
        stack_.push_back(call(fn, args));
        break;
      }
      case 'b': {  // BUILD: sets an object's state; a state dict's is its _metadata, not needed here
        pop();
        Obj* o = top();
        if (o->kind != Kind::dict && o->kind != Kind::tensor) {
          err("BUILD on a ", kind_name(o->kind), " is not supported");
        }
        break;
      }
      case 'Q': {  // BINPERSID
        Obj* pid = pop();
        stack_.push_back(load_(pid, what_ + " byte " + std::to_string(at_)));
        break;
      }
      default: {
        std::string shown = op_ >= 0x20 && op_ < 0x7f ? std::string(" ('") + char(op_) + "')" : "";
        err("unsupported pickle opcode 0x", hex(op_), shown,
            " (a checkpoint may hold only tensors, dicts, lists, tuples and plain values)");
      }
    }
  }
}

Obj* Unpickler::global(const std::string& module, const std::string& name) {
  for (const auto& g : kGlobals) {
    if (module == g.module && name == g.name) {
      Obj* o = make(Kind::global);
      o->global = &g;
      o->s = module + "." + name;
      o->dtype = g.dtype;
      return o;
    }
  }
  err("unsupported global '", module, ".", name,
      "': a checkpoint may hold only tensors, parameters, dicts, lists, tuples and plain values "
      "(save a state dict, not a module or other object)");
}

void Unpickler::set_item(Obj* dict, Obj* key, Obj* value) {
  expect(dict, Kind::dict, "the target of SETITEM");
  std::string k;
  if (key->kind == Kind::string) k = key->s;
  else if (key->kind == Kind::integer) k = std::to_string(key->i);
  else err("dict keys must be str or int, not ", kind_name(key->kind));
  auto [it, fresh] = dict->keys.emplace(k, dict->items.size());
  if (fresh) {
    dict->items.push_back(key);
    dict->items.push_back(value);
  } else {
    dict->items[it->second + 1] = value;  // a repeated key replaces the value, as in Python
  }
}

Obj* Unpickler::call(Obj* fn, Obj* args) {
  if (fn->kind != Kind::global) err("REDUCE calls a ", kind_name(fn->kind), ", not a global");
  const auto& a = args->items;
  auto arity = [&](size_t lo, size_t hi) {
    if (a.size() < lo || a.size() > hi) err(fn->s, " takes ", lo, lo == hi ? "" : " to " + std::to_string(hi),
                                            " arguments, not ", a.size());
  };
  switch (fn->global->fn) {
    case Fn::ordered_dict:
      arity(0, 0);
      return make(Kind::dict);
    case Fn::size: {
      arity(1, 1);
      ints_arg(a[0], "the argument of torch.Size");
      return tuple(a[0]->items);
    }
    case Fn::rebuild_tensor: arity(4, 4); return make_tensor(a, std::nullopt);
    case Fn::rebuild_tensor_v2: arity(6, 7); return make_tensor(a, std::nullopt);
    case Fn::rebuild_tensor_v3: {
      arity(7, 8);
      if (a[6]->kind != Kind::global || a[6]->global->fn != Fn::dtype) {
        err("the dtype of ", fn->s, " must be a torch dtype");
      }
      return make_tensor(a, a[6]->dtype);
    }
    case Fn::rebuild_parameter:
    case Fn::rebuild_parameter_with_state: {
      if (fn->global->fn == Fn::rebuild_parameter) arity(3, 3);
      else arity(4, 4);
      expect(a[0], Kind::tensor, "the data of a parameter");
      expect(a[1], Kind::boolean, "requires_grad");
      Obj* t = make(Kind::tensor);
      *t = *a[0];
      t->requires_grad = a[1]->b;
      t->is_parameter = true;
      return t;
    }
    case Fn::storage_type:
    case Fn::dtype: break;
  }
  err("REDUCE of '", fn->s, "' is not supported");
}

// The tensor `a` describes: a strided view of a storage, checked to lie inside it.
Obj* Unpickler::make_tensor(const std::vector<Obj*>& a, std::optional<Dtype> dtype) {
  const Obj* st = expect(a[0], Kind::storage, "the storage of a tensor");
  int64_t offset = int_arg(a[1], "the storage offset of a tensor");
  if (offset < 0) err("a tensor has the negative storage offset ", offset);
  std::vector<int64_t> shape = ints_arg(a[2], "the size of a tensor");
  std::vector<int64_t> strides = ints_arg(a[3], "the stride of a tensor");
  if (shape.size() != strides.size()) err("a tensor has size ", shape, " but stride ", strides);
  bool requires_grad = false;
  if (a.size() > 4) requires_grad = expect(a[4], Kind::boolean, "requires_grad")->b;
  if (st->dtype && dtype && *st->dtype != *dtype) {
    err("a tensor of dtype ", *dtype, " views storage '", st->s, "' of dtype ", *st->dtype);
  }
  if (!dtype) dtype = st->dtype;
  if (!dtype) err("a tensor views the untyped storage '", st->s, "' without naming a dtype");
  uint64_t item = size_of(*dtype);
  if (st->nbytes % item) {
    err("storage '", st->s, "' of ", st->nbytes, " bytes is no whole number of ", *dtype, " elements");
  }
  uint64_t elements = st->nbytes / item;
  int64_t numel = 1, last = offset;
  bool overflow = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    overflow = overflow || __builtin_mul_overflow(numel, shape[d], &numel);
    int64_t span = 0;
    if (shape[d] > 0) overflow = overflow || __builtin_mul_overflow(shape[d] - 1, strides[d], &span);
    overflow = overflow || __builtin_add_overflow(last, span, &last);
  }
  if (overflow) err("a tensor of size ", shape, " and stride ", strides, " overflows");
  if (numel > 0 && static_cast<uint64_t>(last) >= elements) {
    err("a tensor of size ", shape, ", stride ", strides, " and offset ", offset, " reaches element ", last,
        " of storage '", st->s, "', which holds ", elements);
  }
  // Only a view that repeats elements (a zero stride, as expand makes) copies out to more than
  // its storage; cap that, so a corrupt size cannot ask for terabytes.
  if (static_cast<uint64_t>(numel) > elements && static_cast<uint64_t>(numel) > (kMaxRepeatedBytes / item)) {
    err("a tensor of size ", shape, " and stride ", strides, " repeats the ", elements, " elements of storage '", st->s,
        "' into more than ", kMaxRepeatedBytes, " bytes");
  }
  Obj* t = make(Kind::tensor);
  t->storage = st;
  t->dtype = dtype;
  t->shape = shape;
  t->strides = strides;
  t->offset = offset;
  t->requires_grad = requires_grad;
  return t;
}

// The storage a persistent id names: ('storage', storage_type, key, location, numel), with a
// sixth entry (a view, always None since PyTorch 1.0) in the legacy stream.
Obj* load_storage(Arena& arena, const Obj* pid, bool legacy, const std::string& path, const std::string& where) {
  auto fail_pid = [&](const auto&... parts) { bad(path, where, ": persistent id ", parts...); };
  size_t want = legacy ? 6 : 5;
  if (pid->kind != Kind::tuple || pid->items.size() != want) fail_pid("is not a ", want, "-tuple");
  const auto& v = pid->items;
  if (v[0]->kind != Kind::string || v[0]->s != "storage") fail_pid("does not start with 'storage'");
  if (v[1]->kind != Kind::global || v[1]->global->fn != Fn::storage_type) fail_pid("has no storage type");
  if (v[2]->kind != Kind::string) fail_pid("has a key that is not a str");
  if (v[3]->kind != Kind::string) fail_pid("has a location that is not a str");
  if (v[4]->kind != Kind::integer || v[4]->i < 0) fail_pid("has a size that is not a non-negative int");
  if (legacy && v[5]->kind != Kind::none) fail_pid("names a storage view, which only PyTorch before 1.0 wrote");
  std::optional<Dtype> dtype = v[1]->dtype;
  uint64_t nbytes;
  if (__builtin_mul_overflow(static_cast<uint64_t>(v[4]->i), dtype ? size_of(*dtype) : 1, &nbytes)) {
    fail_pid("has a size that overflows");
  }
  const std::string& key = v[2]->s;
  auto it = arena.storages.find(key);
  if (it != arena.storages.end()) {
    if (it->second->dtype != dtype || it->second->nbytes != nbytes) {
      bad(path, where, ": storage '", key, "' is declared twice with different types or sizes");
    }
    return it->second;
  }
  Obj* s = arena.make(Kind::storage);
  s->s = key;
  s->dtype = dtype;
  s->nbytes = nbytes;
  arena.storages.emplace(key, s);
  return s;
}

// ---- flattening the object into names ----

constexpr int kMaxDepth = 64;

struct Flattener {
  const std::string& path;
  std::vector<TorchTensorInfo>& tensors;
  std::map<std::string, TorchScalar>& scalars;
  std::set<std::string> names;
  uint64_t budget;  // visits left: shared containers must not blow up exponentially

  void add_name(const std::string& name) {
    if (!names.insert(name).second) bad(path, "two entries flatten to the same name '", name, "'");
  }

  void visit(const Obj* o, const std::string& name, int depth) {
    if (depth > kMaxDepth) bad(path, "the object nests deeper than ", kMaxDepth, " levels at '", name, "'");
    if (budget-- == 0) bad(path, "the object repeats shared containers too often to flatten");
    auto child = [&](const std::string& k) { return name.empty() ? k : name + "." + k; };
    switch (o->kind) {
      case Kind::dict:
        for (size_t j = 0; j < o->items.size(); j += 2) {
          const Obj* k = o->items[j];
          visit(o->items[j + 1], child(k->kind == Kind::string ? k->s : std::to_string(k->i)), depth + 1);
        }
        return;
      case Kind::list:
      case Kind::tuple:
        for (size_t j = 0; j < o->items.size(); ++j) visit(o->items[j], child(std::to_string(j)), depth + 1);
        return;
      case Kind::tensor: {
        add_name(name);
        TorchTensorInfo t;
        t.name = name;
        t.dtype = *o->dtype;
        t.shape = o->shape;
        t.strides = o->strides;
        t.storage_offset = o->offset;
        t.storage_key = o->storage->s;
        t.requires_grad = o->requires_grad;
        t.is_parameter = o->is_parameter;
        tensors.push_back(std::move(t));
        return;
      }
      case Kind::none: add_name(name); scalars.emplace(name, std::monostate{}); return;
      case Kind::boolean: add_name(name); scalars.emplace(name, o->b); return;
      case Kind::integer: add_name(name); scalars.emplace(name, o->i); return;
      case Kind::floating: add_name(name); scalars.emplace(name, o->f); return;
      case Kind::string: add_name(name); scalars.emplace(name, o->s); return;
      case Kind::global:
        if (o->global->fn == Fn::dtype) {  // a dtype in a config dict reads as its name
          add_name(name);
          scalars.emplace(name, o->s);
          return;
        }
        bad(path, "'", name, "' holds ", o->s, ", which is not a tensor or a plain value");
      case Kind::storage:
        bad(path, "'", name, "' holds a bare storage, which is not a tensor");
    }
  }
};

// A fresh evaluated array whose bytes `fill` writes on the host.
array make_array(const Shape& shape, Dtype dtype, const std::function<void(void*)>& fill) {
  array out(shape, dtype, nullptr, {}, default_stream(default_device()));
  auto buffer = std::make_shared<Buffer>(out.nbytes());
  if (out.nbytes()) fill(buffer->write_host());
  out.set_data(std::move(buffer));
  out.detach();
  return out;
}

// Copies the strided view (in elements of N bytes) row-major into `dst`.
template <size_t N>
void gather(uint8_t* dst, const uint8_t* src, const Shape& shape, const Strides& strides) {
  struct Item {
    uint8_t b[N];
  };
  size_t nd = shape.size();
  int64_t inner = shape[nd - 1], step = strides[nd - 1];
  std::vector<int64_t> idx(nd - 1, 0);
  int64_t outer = shape_size(shape) / inner;
  auto* out = reinterpret_cast<Item*>(dst);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t pos = 0;
    for (size_t d = 0; d + 1 < nd; ++d) pos += idx[d] * strides[d];
    const uint8_t* s = src + pos * N;
    if (step == 1) {
      std::memcpy(out, s, inner * N);
      out += inner;
    } else {
      for (int64_t k = 0; k < inner; ++k) std::memcpy(out++, s + k * step * N, N);
    }
    for (size_t d = nd - 1; d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

void copy_view(uint8_t* dst, const uint8_t* src, const TorchTensorInfo& t, size_t item) {
  int64_t n = shape_size(t.shape);
  src += t.storage_offset * item;
  bool dense = true;
  int64_t expect = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.strides[d] != expect) dense = false;
    expect *= t.shape[d];
  }
  if (dense) {
    std::memcpy(dst, src, n * item);
    return;
  }
  switch (item) {
    case 1: gather<1>(dst, src, t.shape, t.strides); break;
    case 2: gather<2>(dst, src, t.shape, t.strides); break;
    case 4: gather<4>(dst, src, t.shape, t.strides); break;
    case 8: gather<8>(dst, src, t.shape, t.strides); break;
    default: fail<ValueError>("[torch_checkpoint] element size ", item, " is not supported");
  }
}

// The legacy stream opens with the pickled magic number 0x1950a86a20f9469cfc6c.
const uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

}  // namespace

TorchCheckpoint TorchCheckpoint::open(const std::string& path) {
  TorchCheckpoint c;
  c.file_ = std::make_shared<MappedFile>(path, "torch_checkpoint");
  const uint8_t* data = c.file_->data();
  uint64_t size = c.file_->size();
  Arena arena;
  Obj* root = nullptr;

  // A local header first, or an archive with no entries at all.
  bool is_zip = size >= 4 && (std::memcmp(data, "PK\x03\x04", 4) == 0 || std::memcmp(data, "PK\x05\x06", 4) == 0);
  c.legacy_ = size >= sizeof(kLegacyMagic) && std::memcmp(data, kLegacyMagic, sizeof(kLegacyMagic)) == 0;
  if (is_zip) {
    ZipIndex zip(data, size, path);
    const std::string& first = zip.entries().empty() ? std::string() : zip.entries()[0].name;
    std::string archive = first.substr(0, first.find('/'));
    if (first.find('/') == std::string::npos) bad(path, "zip archive is not laid out as torch.save writes it");
    const ZipEntry* pkl = zip.find(archive + "/data.pkl");
    if (!pkl) bad(path, "zip archive has no '", archive, "/data.pkl' record (not written by torch.save)");
    if (const ZipEntry* order = zip.find(archive + "/byteorder")) {
      std::string_view v = zip.read_checked(*order);
      if (v != "little") bad(path, "byte order is '", v, "'; only little-endian checkpoints are supported");
    }
    std::string_view bytes = zip.read_checked(*pkl);
    auto load = [&](const Obj* pid, const std::string& where) { return load_storage(arena, pid, false, path, where); };
    Unpickler u(arena, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, "data.pkl", load);
    root = u.run();
    for (const auto& [key, st] : arena.storages) {
      std::string name = archive + "/data/" + key;
      const ZipEntry* e = zip.find(name);
      if (!e) bad(path, "storage '", key, "' has no record '", name, "'");
      ZipRecord r = zip.locate(*e);
      if (r.size != st->nbytes) {
        bad(path, "record '", name, "' holds ", r.size, " bytes but its storage needs ", st->nbytes);
      }
      c.storages_.emplace(key, StorageRecord{r.offset, r.size, r.crc});
    }
  } else if (c.legacy_) {
    // The magic number, the protocol version, the system info, the object, the storage keys, then
    // the storages in key order, each an int64 element count and its bytes.
    uint64_t pos = sizeof(kLegacyMagic);
    auto next = [&](const std::string& what, PersistentLoad load) {
      Unpickler u(arena, data + pos, size - pos, path, what, std::move(load));
      Obj* o = u.run();
      pos += u.consumed();
      return o;
    };
    auto no_pid = [&](const Obj*, const std::string& where) -> Obj* {
      bad(path, where, ": persistent id outside the object");
    };
    Obj* version = next("legacy protocol version", no_pid);
    if (version->kind != Kind::integer || version->i != 1001) bad(path, "legacy stream of an unknown protocol version");
    Obj* info = next("legacy system info", no_pid);
    if (info->kind != Kind::dict) bad(path, "legacy system info is not a dict");
    auto le_key = info->keys.find("little_endian");
    if (le_key != info->keys.end()) {
      const Obj* v = info->items[le_key->second + 1];
      if (v->kind != Kind::boolean || !v->b) bad(path, "legacy stream is not little-endian");
    }
    auto load = [&](const Obj* pid, const std::string& where) { return load_storage(arena, pid, true, path, where); };
    root = next("legacy object pickle", load);
    Obj* keys = next("legacy storage key list", no_pid);
    if (keys->kind != Kind::list) bad(path, "legacy storage key list is not a list");
    for (const Obj* k : keys->items) {
      if (k->kind != Kind::string) bad(path, "legacy storage key list holds a ", kind_name(k->kind));
      auto it = arena.storages.find(k->s);
      if (it == arena.storages.end()) bad(path, "legacy stream stores '", k->s, "', which no tensor uses");
      if (c.storages_.count(k->s)) bad(path, "legacy stream stores '", k->s, "' twice");
      const Obj* st = it->second;
      uint64_t item = st->dtype ? size_of(*st->dtype) : 1;
      if (size - pos < 8) bad(path, "legacy stream ends before storage '", k->s, "'");
      uint64_t count = le<uint64_t>(data + pos);
      pos += 8;
      if (count != st->nbytes / item) {
        bad(path, "legacy storage '", k->s, "' holds ", count, " elements but was declared with ", st->nbytes / item);
      }
      if (size - pos < st->nbytes) bad(path, "legacy stream ends inside storage '", k->s, "'");
      c.storages_.emplace(k->s, StorageRecord{pos, st->nbytes, std::nullopt});
      pos += st->nbytes;
    }
    for (const auto& [key, st] : arena.storages) {
      if (!c.storages_.count(key)) bad(path, "legacy stream lacks the bytes of storage '", key, "'");
    }
  } else if (size >= 262 && std::memcmp(data + 257, "ustar", 5) == 0) {
    bad(path, "tar archive: the oldest torch.save format (before PyTorch 0.4) is not supported");
  } else {
    bad(path, "not a PyTorch checkpoint: neither a zip archive (torch.save since PyTorch 1.6) nor the legacy "
              "torch.save stream");
  }

  Flattener f{path, c.tensors_, c.scalars_, {}, 8 * arena.objs.size() + 1024};
  f.visit(root, "", 0);
  for (size_t i = 0; i < c.tensors_.size(); ++i) c.index_.emplace(c.tensors_[i].name, i);
  return c;
}

const TorchTensorInfo& TorchCheckpoint::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) bad(path(), "no tensor named '", name, "'");
  return tensors_[it->second];
}

array TorchCheckpoint::load_tensor(const std::string& name, std::optional<Dtype> target) const {
  const TorchTensorInfo& t = tensor(name);
  const StorageRecord& r = storages_.at(t.storage_key);
  const uint8_t* src = file_->data() + r.offset;
  if (r.crc32 && crc32(src, r.nbytes) != *r.crc32) {
    bad(path(), "the record of storage '", t.storage_key, "' fails its CRC-32 check");
  }
  array a = make_array(t.shape, t.dtype, [&](void* dst) {
    auto* d = static_cast<uint8_t*>(dst);
    copy_view(d, src, t, size_of(t.dtype));
    if (t.dtype == bool_) {
      // Any nonzero byte is true; a C++ bool must hold exactly 0 or 1.
      for (size_t i = 0; i < static_cast<size_t>(shape_size(t.shape)); ++i) d[i] = d[i] != 0;
    }
  });
  if (!target || *target == t.dtype) return a;
  array cast = astype(a, *target, Device(Device::cpu));
  cast.eval();
  return cast;
}

std::map<std::string, array> TorchCheckpoint::load_all(std::optional<Dtype> target, const std::string& prefix) const {
  std::string pre = prefix.empty() ? "" : prefix + ".";
  std::map<std::string, array> out;
  for (const auto& t : tensors_) {
    if (t.name.compare(0, pre.size(), pre) != 0) continue;
    out.emplace(t.name.substr(pre.size()), load_tensor(t.name, target));
  }
  if (!prefix.empty() && out.empty()) bad(path(), "no tensors under '", prefix, "'");
  return out;
}

std::map<std::string, array> load_torch_checkpoint(const std::string& path, std::optional<Dtype> target) {
  return TorchCheckpoint::open(path).load_all(target);
}

}  // namespace kiln::io
