// IndexedDB for src/app/storage.rs (one object store of byte arrays by key).
const DB = "medseg", STORE = "files";
function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
function run(mode, f) {
  return open().then(db => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = f(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(req.result); };
    tx.onerror = tx.onabort = () => { db.close(); reject(tx.error || req.error); };
  }));
}
export function idb_put(key, bytes) { return run("readwrite", s => s.put(bytes, key)); }
export function idb_get(key) { return run("readonly", s => s.get(key)); }
export function idb_delete(key) { return run("readwrite", s => s.delete(key)); }
export function idb_drop() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(DB);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("medseg is open in another tab; close it and try again"));
  });
}
