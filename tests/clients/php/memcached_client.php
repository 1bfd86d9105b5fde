<?php
// PHP's Memcached extension (libmemcached underneath) against the servers named on the command
// line: php memcached_client.php text|binary HOST:PORT[,HOST:PORT...]
//
// Prints "ok NAME" for each check that holds and exits 0; on the first mismatch prints what was
// expected and what came back, and exits 1. Driven by tests/clients/test_php_memcached.py.

error_reporting(E_ALL);
set_error_handler(function ($no, $msg, $file, $line) {
    fwrite(STDERR, "PHP error: $msg at $file:$line\n");
    exit(2);
});

[$mode, $list] = [$argv[1] ?? '', $argv[2] ?? ''];
if (!in_array($mode, ['text', 'binary'], true) || $list === '') {
    fwrite(STDERR, "usage: php memcached_client.php text|binary HOST:PORT[,HOST:PORT...]\n");
    exit(64);
}
$servers = array_map(fn ($hp) => explode(':', $hp), explode(',', $list));
$binary = $mode === 'binary';

// Sessions want to send headers (a cookie) before any output; buffer ours until the end.
ob_start();

function check(string $name, $expected, $actual): void
{
    if ($expected !== $actual) {
        echo "FAIL $name\n  expected: " . var_export($expected, true)
            . "\n  actual:   " . var_export($actual, true) . "\n";
        exit(1);
    }
    echo "ok $name\n";
}

function ksorted(array $a): array
{
    ksort($a, SORT_STRING);
    return $a;
}

function client(array $servers, bool $binary): Memcached
{
    $m = new Memcached();
    $m->setOption(Memcached::OPT_BINARY_PROTOCOL, $binary);
    $m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
    $m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 5000);
    $m->setOption(Memcached::OPT_RECV_TIMEOUT, 5000000);
    $m->setOption(Memcached::OPT_SEND_TIMEOUT, 5000000);
    $m->setOption(Memcached::OPT_COMPRESSION, false);
    if (!$m->addServers($servers)) {
        throw new RuntimeException('addServers failed');
    }
    return $m;
}

// A session handler on nothing but get, set and delete.
class MemcachedSessionHandler implements SessionHandlerInterface
{
    public array $calls = [];

    public function __construct(private Memcached $m, private int $ttl = 600)
    {
    }

    public function open(string $path, string $name): bool
    {
        $this->calls[] = 'open';
        return true;
    }

    public function close(): bool
    {
        $this->calls[] = 'close';
        return true;
    }

    public function read(string $id): string|false
    {
        $this->calls[] = 'read';
        $data = $this->m->get("sess:$id");
        if ($data === false) {
            // A session that does not exist yet is empty, not an error.
            return $this->m->getResultCode() === Memcached::RES_NOTFOUND ? '' : false;
        }
        return $data;
    }

    public function write(string $id, string $data): bool
    {
        $this->calls[] = 'write';
        return $this->m->set("sess:$id", $data, $this->ttl);
    }

    public function destroy(string $id): bool
    {
        $this->calls[] = 'destroy';
        return $this->m->delete("sess:$id") || $this->m->getResultCode() === Memcached::RES_NOTFOUND;
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0; // memcached expires the items itself
    }
}

$m = client($servers, $binary);
check('server list', count($servers), count($m->getServerList()));
check('flush', true, $m->flush());
check('version', array_fill_keys(array_map(fn ($s) => "$s[0]:$s[1]", $servers), '1.6.38'), $m->getVersion());

// --- sessions
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.serialize_handler', 'php_serialize');
$handler = new MemcachedSessionHandler($m);
check('session_set_save_handler', true, session_set_save_handler($handler, true));
$sid = "phpsess$mode" . getmypid();
session_id($sid);
check('session_start (new)', true, session_start());
check('new session is empty', [], $_SESSION);
$_SESSION['user'] = 'alice';
$_SESSION['cart'] = ['apple' => 3, 'pear' => 1];
$_SESSION['bytes'] = "\x00\r\nEND\r\n";
check('session_write_close', true, session_write_close());
check('session stored as one item',
    serialize(['user' => 'alice', 'cart' => ['apple' => 3, 'pear' => 1], 'bytes' => "\x00\r\nEND\r\n"]),
    $m->get("sess:$sid"));

$_SESSION = [];
session_id($sid);
check('session_start (existing)', true, session_start());
check('session read back', ['user' => 'alice', 'cart' => ['apple' => 3, 'pear' => 1], 'bytes' => "\x00\r\nEND\r\n"], $_SESSION);
$_SESSION['cart']['apple']++;
session_write_close();
check('updated session', 4, unserialize($m->get("sess:$sid"))['cart']['apple']);

session_id($sid);
session_start();
check('session_destroy', true, session_destroy());
check('destroyed session is gone', false, $m->get("sess:$sid"));
check('destroyed session: NOTFOUND', Memcached::RES_NOTFOUND, $m->getResultCode());
check('handler calls', ['open', 'read', 'write', 'close', 'open', 'read', 'write', 'close', 'open', 'read', 'destroy', 'close'], $handler->calls);

// --- getMulti
$values = [];
for ($i = 0; $i < 50; $i++) {
    $values["multi:$i"] = str_repeat(chr(65 + $i % 26), $i + 1);
}
$values['int'] = 12345;
$values['array'] = ['nested' => [1, 2.5, true, null]];
check('setMulti', true, $m->setMulti($values, 300));
$keys = array_merge(array_keys($values), ['missing:1', 'missing:2']);
// Replies come server by server: compare as maps, not in order.
check('getMulti', ksorted($values), ksorted($m->getMulti($keys)));
check('getMulti preserves order with nulls', ['missing:1' => null, 'multi:3' => 'DDDD'],
    $m->getMulti(['missing:1', 'multi:3'], Memcached::GET_PRESERVE_ORDER));
$stats = $m->getStats();
check('getStats servers', count($servers), count($stats));
check('items across servers', 52, array_sum(array_column($stats, 'curr_items')));

// --- increment / decrement
check('set counter', true, $m->set('counter', 5));
check('increment', 8, $m->increment('counter', 3));
check('decrement', 6, $m->decrement('counter', 2));
check('decrement stops at 0', 0, $m->decrement('counter', 100));
check('counter is raw digits', 0, $m->get('counter'));
check('increment missing', false, $m->increment('nocounter', 1));
check('increment missing: NOTFOUND', Memcached::RES_NOTFOUND, $m->getResultCode());
if ($binary) {
    // An initial value is a binary-protocol feature: the server creates the counter.
    check('increment with initial value', 10, $m->increment('bincounter', 1, 10, 300));
    check('increment after create', 11, $m->increment('bincounter', 1, 10, 300));
    check('decrement with initial value', 7, $m->decrement('bindown', 1, 7, 300));
}

// --- cas
check('set cas key', true, $m->set('caskey', 'first'));
$got = $m->get('caskey', null, Memcached::GET_EXTENDED);
check('GET_EXTENDED value', 'first', $got['value']);
$cas = $got['cas'];
check('cas is a positive number', true, is_numeric($cas) && $cas > 0);
check('cas with current token', true, $m->cas($cas, 'caskey', 'second'));
check('value after cas', 'second', $m->get('caskey'));
check('cas with stale token', false, $m->cas($cas, 'caskey', 'third'));
check('stale cas: DATA_EXISTS', Memcached::RES_DATA_EXISTS, $m->getResultCode());
check('value after stale cas', 'second', $m->get('caskey'));
check('cas on missing key', false, $m->cas($cas, 'nocaskey', 'x'));
check('cas on missing key: NOTFOUND', Memcached::RES_NOTFOUND, $m->getResultCode());
$multi = $m->getMulti(['caskey', 'counter'], Memcached::GET_EXTENDED);
check('getMulti GET_EXTENDED', ['second', 0], [$multi['caskey']['value'], $multi['counter']['value']]);
check('cas from getMulti', true, $m->cas($multi['caskey']['cas'], 'caskey', 'third'));
check('value after multi cas', 'third', $m->get('caskey'));

// --- the rest of the everyday API
check('add existing', false, $m->add('caskey', 'x'));
// Text says NOT_STORED; binary says "key exists" (status 0x0002).
check('add existing: result code', $binary ? Memcached::RES_DATA_EXISTS : Memcached::RES_NOTSTORED, $m->getResultCode());
check('add new', true, $m->add('added', 'x'));
check('replace', true, $m->replace('added', 'y'));
$m->setOption(Memcached::OPT_COMPRESSION, false); // append/prepend refuse compressed values
check('append', true, $m->append('added', '>'));
check('prepend', true, $m->prepend('added', '<'));
check('appended', '<y>', $m->get('added'));
check('touch', true, $m->touch('added', 600));
check('delete', true, $m->delete('added'));
check('delete missing', false, $m->delete('added'));
check('deleteMulti', ['multi:0' => true, 'multi:1' => true, 'nope' => Memcached::RES_NOTFOUND],
    $m->deleteMulti(['multi:0', 'multi:1', 'nope']));
$big = random_bytes(500000);
check('set large', true, $m->set('big', $big));
check('get large', $big, $m->get('big'));
check('flush at end', true, $m->flush());
check('empty after flush', [], $m->getMulti(array_keys($values)));

echo "done $mode\n";
