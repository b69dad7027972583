//! The safe wrapper over the generated bindings: RAII handles for a cluster
//! connection ([`Rados`]), a pool context ([`IoCtx`]) and an open image
//! ([`Image`]), and negative errno values turned into [`RbdError`]s that
//! carry the semantic [`BackendErrorKind`].
//!
//! This is the only module of the crate with `unsafe` code. Every call
//! passes pointers that live for the duration of the call (C strings built
//! here, buffers owned here) and frees what librbd allocates with librbd's
//! own cleanup functions.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::ptr;

use crate::error::BackendErrorKind;

use super::sys;

/// A failed librados/librbd call: the function and its negative errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbdError {
    /// The C function that failed, e.g. `rbd_clone3`.
    pub call: &'static str,
    /// The errno it returned (positive).
    pub errno: i32,
}

impl RbdError {
    fn new(call: &'static str, ret: i64) -> Self {
        let errno = i32::try_from(ret.unsigned_abs()).unwrap_or(i32::MAX);
        Self { call, errno }
    }

    /// The semantic kind: `ENOENT` is "not found" (a pool that cannot be
    /// opened: "pool not found"), `EEXIST` "already exists", `EBUSY` "busy",
    /// `ENOTEMPTY` "has snapshots", `EINVAL` "invalid argument",
    /// `EPERM`/`EACCES` "permission denied", time-outs and lost connections
    /// "unavailable", `EOPNOTSUPP`/`ENOSYS` "not supported".
    pub fn kind(&self) -> BackendErrorKind {
        kind_of_errno(self.call, self.errno)
    }

    /// Whether this is `ENOENT`.
    pub fn is_not_found(&self) -> bool {
        self.errno == libc::ENOENT
    }

    /// Whether this is `EPERM` or `EACCES`.
    pub fn is_permission(&self) -> bool {
        self.errno == libc::EPERM || self.errno == libc::EACCES
    }
}

/// Maps an errno from `call` to a semantic kind.
pub fn kind_of_errno(call: &str, errno: i32) -> BackendErrorKind {
    use BackendErrorKind::*;
    match errno {
        libc::ENOENT if call == "rados_ioctx_create" => PoolNotFound,
        libc::ENOENT => NotFound,
        libc::EEXIST => AlreadyExists,
        libc::EBUSY => Busy,
        libc::ENOTEMPTY => HasSnapshots,
        libc::EINVAL | libc::EDOM | libc::ERANGE => InvalidArgument,
        libc::EPERM | libc::EACCES => PermissionDenied,
        libc::ETIMEDOUT | libc::ENOTCONN | libc::ESHUTDOWN | libc::ECONNREFUSED | libc::EHOSTUNREACH => Unavailable,
        libc::EOPNOTSUPP | libc::ENOSYS => NotSupported,
        _ => Other,
    }
}

impl fmt::Display for RbdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} (errno {})", self.call, std::io::Error::from_raw_os_error(self.errno), self.errno)
    }
}

impl std::error::Error for RbdError {}

/// Result of a wrapped call.
pub type RbdResult<T> = Result<T, RbdError>;

fn check(call: &'static str, ret: c_int) -> RbdResult<c_int> {
    if ret < 0 {
        Err(RbdError::new(call, i64::from(ret)))
    } else {
        Ok(ret)
    }
}

/// A C string; an interior NUL is an invalid argument.
fn cstr(call: &'static str, s: &str) -> RbdResult<CString> {
    CString::new(s).map_err(|_| RbdError { call, errno: libc::EINVAL })
}

/// Copies a C string librbd owns (`NULL` is empty).
fn owned(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: librbd hands out NUL-terminated strings that live until its
    // cleanup function runs, which happens after this copy.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Reads a NUL-terminated string out of a buffer librados filled.
fn from_buf(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A connection to a cluster (`rados_t`), shut down on drop.
#[derive(Debug)]
pub struct Rados {
    handle: sys::rados_t,
}

// SAFETY: librados cluster handles are thread-safe; every method takes
// `&self` and librados synchronises internally.
unsafe impl Send for Rados {}
// SAFETY: as above.
unsafe impl Sync for Rados {}

impl Rados {
    /// Creates a handle for client `id` (`None`: librados' default,
    /// `admin`), reads `conf` (`None`: the default search path and
    /// `CEPH_CONF`), applies `overrides` and connects.
    pub fn connect(id: Option<&str>, conf: Option<&Path>, overrides: &[(String, String)]) -> RbdResult<Self> {
        let id = id.map(|s| cstr("rados_create", s)).transpose()?;
        let mut handle: sys::rados_t = ptr::null_mut();
        // SAFETY: `handle` is a valid out pointer; `id` lives across the call.
        check("rados_create", unsafe {
            sys::rados_create(&mut handle, id.as_ref().map_or(ptr::null(), |s| s.as_ptr()))
        })?;
        // From here on, drop shuts the handle down.
        let rados = Self { handle };
        let path = match conf {
            Some(p) => Some(cstr("rados_conf_read_file", &p.to_string_lossy())?),
            None => None,
        };
        // SAFETY: valid handle; `path` is NULL or a C string alive across the call.
        check("rados_conf_read_file", unsafe {
            sys::rados_conf_read_file(rados.handle, path.as_ref().map_or(ptr::null(), |s| s.as_ptr()))
        })?;
        // SAFETY: valid handle; CEPH_ARGS is read from the environment.
        check("rados_conf_parse_env", unsafe { sys::rados_conf_parse_env(rados.handle, ptr::null()) })?;
        for (key, value) in overrides {
            rados.conf_set(key, value)?;
        }
        // SAFETY: valid, configured handle.
        check("rados_connect", unsafe { sys::rados_connect(rados.handle) })?;
        Ok(rados)
    }

    /// `rados_conf_set`.
    pub fn conf_set(&self, key: &str, value: &str) -> RbdResult<()> {
        let (k, v) = (cstr("rados_conf_set", key)?, cstr("rados_conf_set", value)?);
        // SAFETY: valid handle and C strings.
        check("rados_conf_set", unsafe { sys::rados_conf_set(self.handle, k.as_ptr(), v.as_ptr()) })?;
        Ok(())
    }

    /// `rados_conf_get`: a configuration value as the client sees it.
    pub fn conf_get(&self, key: &str) -> RbdResult<String> {
        let k = cstr("rados_conf_get", key)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid handle; `buf` is writable for its length.
        check("rados_conf_get", unsafe {
            sys::rados_conf_get(self.handle, k.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        })?;
        Ok(from_buf(&buf))
    }

    /// `rados_cluster_fsid`.
    pub fn fsid(&self) -> RbdResult<String> {
        let mut buf = vec![0u8; 64];
        // SAFETY: valid handle; `buf` is writable for its length.
        check("rados_cluster_fsid", unsafe {
            sys::rados_cluster_fsid(self.handle, buf.as_mut_ptr().cast(), buf.len())
        })?;
        Ok(from_buf(&buf))
    }

    /// `rados_pool_lookup`: whether the pool exists.
    pub fn pool_exists(&self, pool: &str) -> RbdResult<bool> {
        let p = cstr("rados_pool_lookup", pool)?;
        // SAFETY: valid handle and C string.
        let r = unsafe { sys::rados_pool_lookup(self.handle, p.as_ptr()) };
        match r {
            r if r >= 0 => Ok(true),
            r if r == -i64::from(libc::ENOENT) => Ok(false),
            r => Err(RbdError::new("rados_pool_lookup", r)),
        }
    }

    /// `rados_mon_command` with one JSON command: the output buffer and the
    /// status string.
    pub fn mon_command(&self, json: &str) -> RbdResult<(String, String)> {
        let cmd = cstr("rados_mon_command", json)?;
        let cmds = [cmd.as_ptr()];
        let (mut outbuf, mut outbuflen, mut outs, mut outslen) = (ptr::null_mut(), 0usize, ptr::null_mut(), 0usize);
        // SAFETY: valid handle; `cmds` holds one C string alive across the
        // call; the out pointers are valid; the buffers librados allocates are
        // released below with `rados_buffer_free`.
        let r = unsafe {
            sys::rados_mon_command(
                self.handle,
                cmds.as_ptr() as *mut *const c_char,
                1,
                ptr::null(),
                0,
                &mut outbuf,
                &mut outbuflen,
                &mut outs,
                &mut outslen,
            )
        };
        let take = |p: *mut c_char, len: usize| -> String {
            if p.is_null() {
                return String::new();
            }
            // SAFETY: librados allocated `len` bytes at `p`.
            let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
            let s = String::from_utf8_lossy(bytes).into_owned();
            // SAFETY: `p` came from librados and is freed once.
            unsafe { sys::rados_buffer_free(p) };
            s
        };
        let (out, status) = (take(outbuf, outbuflen), take(outs, outslen));
        check("rados_mon_command", r)?;
        Ok((out, status))
    }

    /// Opens a pool (and sets the RADOS namespace when given). `ENOENT`
    /// means the pool does not exist.
    pub fn ioctx(&self, pool: &str, namespace: Option<&str>) -> RbdResult<IoCtx<'_>> {
        let p = cstr("rados_ioctx_create", pool)?;
        let ns = namespace.map(|n| cstr("rados_ioctx_set_namespace", n)).transpose()?;
        let mut handle: sys::rados_ioctx_t = ptr::null_mut();
        // SAFETY: valid handle, C string and out pointer.
        check("rados_ioctx_create", unsafe { sys::rados_ioctx_create(self.handle, p.as_ptr(), &mut handle) })?;
        let io = IoCtx { handle, _rados: PhantomData };
        if let Some(ns) = ns {
            // SAFETY: valid ioctx and C string (copied by librados).
            unsafe { sys::rados_ioctx_set_namespace(io.handle, ns.as_ptr()) };
        }
        Ok(io)
    }
}

impl Drop for Rados {
    fn drop(&mut self) {
        // SAFETY: the handle was created by `rados_create` and every IoCtx
        // borrowing it is gone (lifetimes).
        unsafe { sys::rados_shutdown(self.handle) };
    }
}

/// Image creation options (`rbd_image_options_t`), destroyed on drop.
struct Options(sys::rbd_image_options_t);

impl Options {
    fn new() -> Self {
        let mut o: sys::rbd_image_options_t = ptr::null_mut();
        // SAFETY: valid out pointer.
        unsafe { sys::rbd_image_options_create(&mut o) };
        Self(o)
    }

    fn set(&self, option: u32, value: u64) -> RbdResult<()> {
        let option = c_int::try_from(option)
            .map_err(|_| RbdError { call: "rbd_image_options_set_uint64", errno: libc::EINVAL })?;
        // SAFETY: valid options handle.
        check("rbd_image_options_set_uint64", unsafe { sys::rbd_image_options_set_uint64(self.0, option, value) })?;
        Ok(())
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by `rbd_image_options_create`, destroyed once.
        unsafe { sys::rbd_image_options_destroy(self.0) };
    }
}

/// An image in the trash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    /// Image id.
    pub id: String,
    /// Name it had.
    pub name: String,
}

/// An image linked to another (a parent or a child), as librbd names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedImage {
    /// Pool name.
    pub pool: String,
    /// RADOS namespace ("" for the default).
    pub namespace: String,
    /// Image name.
    pub name: String,
    /// Image id.
    pub id: String,
    /// Whether it sits in the trash.
    pub trash: bool,
}

/// A snapshot's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapNamespace {
    /// A user snapshot.
    User,
    /// Clone v2: removed while it had children; its original name.
    Trash {
        /// The name it had.
        original_name: String,
    },
    /// Group or mirror snapshots.
    Other,
}

/// A snapshot of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapInfo {
    /// Snapshot id.
    pub id: u64,
    /// Current name (for trashed snapshots, a generated one).
    pub name: String,
    /// Image size at the snapshot.
    pub size: u64,
    /// Its namespace.
    pub namespace: SnapNamespace,
}

/// A clone's parent: the image and the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentInfo {
    /// The parent image.
    pub image: LinkedImage,
    /// Snapshot id.
    pub snap_id: u64,
    /// Snapshot name as librbd reports it (trashed: the generated name).
    pub snap_name: String,
    /// Whether the snapshot is in the trash namespace.
    pub snap_in_trash: bool,
}

fn linked(spec: &sys::rbd_linked_image_spec_t) -> LinkedImage {
    LinkedImage {
        pool: owned(spec.pool_name),
        namespace: owned(spec.pool_namespace),
        name: owned(spec.image_name),
        id: owned(spec.image_id),
        trash: spec.trash,
    }
}

/// An open pool (`rados_ioctx_t`), destroyed on drop; it cannot outlive
/// its [`Rados`].
#[derive(Debug)]
pub struct IoCtx<'r> {
    handle: sys::rados_ioctx_t,
    _rados: PhantomData<&'r Rados>,
}

impl IoCtx<'_> {
    /// `rbd_create4` (format 2) with an object order and feature bits.
    pub fn create(&self, name: &str, size: u64, order: u8, features: u64) -> RbdResult<()> {
        let n = cstr("rbd_create4", name)?;
        let opts = Options::new();
        opts.set(sys::RBD_IMAGE_OPTION_FORMAT, 2)?;
        opts.set(sys::RBD_IMAGE_OPTION_ORDER, u64::from(order))?;
        opts.set(sys::RBD_IMAGE_OPTION_FEATURES, features)?;
        // SAFETY: valid ioctx, C string and options.
        check("rbd_create4", unsafe { sys::rbd_create4(self.handle, n.as_ptr(), size, opts.0) })?;
        Ok(())
    }

    /// `rbd_clone3`: clones `parent@snap` (in this pool) to `child` in
    /// `child_io`; the clone format follows the client's
    /// `rbd_default_clone_format`.
    pub fn clone_to(
        &self,
        parent: &str,
        snap: &str,
        child_io: &IoCtx<'_>,
        child: &str,
        order: u8,
        features: u64,
    ) -> RbdResult<()> {
        let (p, s, c) = (cstr("rbd_clone3", parent)?, cstr("rbd_clone3", snap)?, cstr("rbd_clone3", child)?);
        let opts = Options::new();
        opts.set(sys::RBD_IMAGE_OPTION_ORDER, u64::from(order))?;
        opts.set(sys::RBD_IMAGE_OPTION_FEATURES, features)?;
        // SAFETY: valid ioctxs, C strings and options.
        check("rbd_clone3", unsafe {
            sys::rbd_clone3(self.handle, p.as_ptr(), s.as_ptr(), child_io.handle, c.as_ptr(), opts.0)
        })?;
        Ok(())
    }

    /// `rbd_remove`.
    pub fn remove(&self, name: &str) -> RbdResult<()> {
        let n = cstr("rbd_remove", name)?;
        // SAFETY: valid ioctx and C string.
        check("rbd_remove", unsafe { sys::rbd_remove(self.handle, n.as_ptr()) })?;
        Ok(())
    }

    /// `rbd_rename` within the pool.
    pub fn rename(&self, from: &str, to: &str) -> RbdResult<()> {
        let (f, t) = (cstr("rbd_rename", from)?, cstr("rbd_rename", to)?);
        // SAFETY: valid ioctx and C strings.
        check("rbd_rename", unsafe { sys::rbd_rename(self.handle, f.as_ptr(), t.as_ptr()) })?;
        Ok(())
    }

    /// `rbd_trash_move`.
    pub fn trash_move(&self, name: &str, delay: u64) -> RbdResult<()> {
        let n = cstr("rbd_trash_move", name)?;
        // SAFETY: valid ioctx and C string.
        check("rbd_trash_move", unsafe { sys::rbd_trash_move(self.handle, n.as_ptr(), delay) })?;
        Ok(())
    }

    /// `rbd_trash_remove` by image id.
    pub fn trash_remove(&self, id: &str, force: bool) -> RbdResult<()> {
        let i = cstr("rbd_trash_remove", id)?;
        // SAFETY: valid ioctx and C string.
        check("rbd_trash_remove", unsafe { sys::rbd_trash_remove(self.handle, i.as_ptr(), force) })?;
        Ok(())
    }

    /// `rbd_trash_list`.
    pub fn trash_list(&self) -> RbdResult<Vec<TrashEntry>> {
        let mut cap = 16usize;
        loop {
            let mut entries: Vec<sys::rbd_trash_image_info_t> = (0..cap).map(|_| Default::default()).collect();
            let mut n = cap;
            // SAFETY: `entries` has room for `n` entries.
            let r = unsafe { sys::rbd_trash_list(self.handle, entries.as_mut_ptr(), &mut n) };
            if r == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("rbd_trash_list", r)?;
            let out = entries[..n].iter().map(|e| TrashEntry { id: owned(e.id), name: owned(e.name) }).collect();
            // SAFETY: the first `n` entries were filled by librbd.
            unsafe { sys::rbd_trash_list_cleanup(entries.as_mut_ptr(), n) };
            return Ok(out);
        }
    }

    /// `rbd_list2`: the images of the pool (namespace), by name.
    pub fn list(&self) -> RbdResult<Vec<String>> {
        let mut cap = 64usize;
        loop {
            let mut specs: Vec<sys::rbd_image_spec_t> = (0..cap).map(|_| Default::default()).collect();
            let mut n = cap;
            // SAFETY: `specs` has room for `n` entries.
            let r = unsafe { sys::rbd_list2(self.handle, specs.as_mut_ptr(), &mut n) };
            if r == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("rbd_list2", r)?;
            let out = specs[..n].iter().map(|s| owned(s.name)).collect();
            // SAFETY: the first `n` entries were filled by librbd.
            unsafe { sys::rbd_image_spec_list_cleanup(specs.as_mut_ptr(), n) };
            return Ok(out);
        }
    }

    /// `rbd_namespace_create` (an RBD namespace inside this pool).
    pub fn namespace_create(&self, name: &str) -> RbdResult<()> {
        let n = cstr("rbd_namespace_create", name)?;
        // SAFETY: valid ioctx and C string.
        check("rbd_namespace_create", unsafe { sys::rbd_namespace_create(self.handle, n.as_ptr()) })?;
        Ok(())
    }

    /// `rbd_namespace_remove` (it must be empty).
    pub fn namespace_remove(&self, name: &str) -> RbdResult<()> {
        let n = cstr("rbd_namespace_remove", name)?;
        // SAFETY: valid ioctx and C string.
        check("rbd_namespace_remove", unsafe { sys::rbd_namespace_remove(self.handle, n.as_ptr()) })?;
        Ok(())
    }

    /// Opens an image read-write (registers a watch: the image counts a
    /// watcher while this handle lives).
    pub fn open(&self, name: &str) -> RbdResult<Image<'_>> {
        let n = cstr("rbd_open", name)?;
        let mut handle: sys::rbd_image_t = ptr::null_mut();
        // SAFETY: valid ioctx, C string and out pointer.
        check("rbd_open", unsafe { sys::rbd_open(self.handle, n.as_ptr(), &mut handle, ptr::null()) })?;
        Ok(Image { handle, _io: PhantomData })
    }

    /// Opens an image read-only (no watch).
    pub fn open_read_only(&self, name: &str) -> RbdResult<Image<'_>> {
        let n = cstr("rbd_open_read_only", name)?;
        let mut handle: sys::rbd_image_t = ptr::null_mut();
        // SAFETY: valid ioctx, C string and out pointer.
        check("rbd_open_read_only", unsafe {
            sys::rbd_open_read_only(self.handle, n.as_ptr(), &mut handle, ptr::null())
        })?;
        Ok(Image { handle, _io: PhantomData })
    }

    /// Opens an image read-only by id (also a trashed one).
    pub fn open_by_id_read_only(&self, id: &str) -> RbdResult<Image<'_>> {
        let i = cstr("rbd_open_by_id_read_only", id)?;
        let mut handle: sys::rbd_image_t = ptr::null_mut();
        // SAFETY: valid ioctx, C string and out pointer.
        check("rbd_open_by_id_read_only", unsafe {
            sys::rbd_open_by_id_read_only(self.handle, i.as_ptr(), &mut handle, ptr::null())
        })?;
        Ok(Image { handle, _io: PhantomData })
    }
}

impl Drop for IoCtx<'_> {
    fn drop(&mut self) {
        // SAFETY: created by `rados_ioctx_create`; every Image borrowing it is gone.
        unsafe { sys::rados_ioctx_destroy(self.handle) };
    }
}

/// An open image (`rbd_image_t`), closed on drop; it cannot outlive its
/// [`IoCtx`].
#[derive(Debug)]
pub struct Image<'i> {
    handle: sys::rbd_image_t,
    _io: PhantomData<&'i IoCtx<'i>>,
}

impl Image<'_> {
    /// `rbd_get_size` (of the snapshot set, or the head).
    pub fn size(&self) -> RbdResult<u64> {
        let mut v = 0u64;
        // SAFETY: valid image and out pointer.
        check("rbd_get_size", unsafe { sys::rbd_get_size(self.handle, &mut v) })?;
        Ok(v)
    }

    /// `rbd_get_features`.
    pub fn features(&self) -> RbdResult<u64> {
        let mut v = 0u64;
        // SAFETY: valid image and out pointer.
        check("rbd_get_features", unsafe { sys::rbd_get_features(self.handle, &mut v) })?;
        Ok(v)
    }

    /// `rbd_get_stripe_unit`.
    pub fn stripe_unit(&self) -> RbdResult<u64> {
        let mut v = 0u64;
        // SAFETY: valid image and out pointer.
        check("rbd_get_stripe_unit", unsafe { sys::rbd_get_stripe_unit(self.handle, &mut v) })?;
        Ok(v)
    }

    /// The object order (`rbd_stat`).
    pub fn order(&self) -> RbdResult<u8> {
        let mut info = sys::rbd_image_info_t::default();
        // SAFETY: valid image; `info` is a valid out struct of the right size.
        check("rbd_stat", unsafe {
            sys::rbd_stat(self.handle, &mut info, std::mem::size_of::<sys::rbd_image_info_t>())
        })?;
        Ok(u8::try_from(info.order).unwrap_or(22))
    }

    /// How many clients watch the image (`rbd_watchers_list`).
    pub fn watchers(&self) -> RbdResult<usize> {
        let mut cap = 8usize;
        loop {
            let mut ws: Vec<sys::rbd_image_watcher_t> = (0..cap).map(|_| Default::default()).collect();
            let mut n = cap;
            // SAFETY: `ws` has room for `n` entries.
            let r = unsafe { sys::rbd_watchers_list(self.handle, ws.as_mut_ptr(), &mut n) };
            if r == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("rbd_watchers_list", r)?;
            // SAFETY: the first `n` entries were filled by librbd.
            unsafe { sys::rbd_watchers_list_cleanup(ws.as_mut_ptr(), n) };
            return Ok(n);
        }
    }

    /// `rbd_get_parent` of the snapshot set (or the head): `None` when it
    /// has no parent.
    pub fn parent(&self) -> RbdResult<Option<ParentInfo>> {
        let mut image = sys::rbd_linked_image_spec_t::default();
        let mut snap = sys::rbd_snap_spec_t::default();
        // SAFETY: valid image and out structs.
        let r = unsafe { sys::rbd_get_parent(self.handle, &mut image, &mut snap) };
        if r == -libc::ENOENT {
            return Ok(None);
        }
        check("rbd_get_parent", r)?;
        let info = ParentInfo {
            image: linked(&image),
            snap_id: snap.id,
            snap_name: owned(snap.name),
            snap_in_trash: snap.namespace_type == sys::RBD_SNAP_NAMESPACE_TYPE_TRASH,
        };
        // SAFETY: both were filled by librbd and are cleaned once.
        unsafe {
            sys::rbd_linked_image_spec_cleanup(&mut image);
            sys::rbd_snap_spec_cleanup(&mut snap);
        }
        Ok(Some(info))
    }

    /// Every snapshot (also trashed ones), in creation (id) order.
    pub fn snaps(&self) -> RbdResult<Vec<SnapInfo>> {
        let mut cap: c_int = 16;
        let raw = loop {
            let len = usize::try_from(cap).unwrap_or(16);
            let mut snaps: Vec<sys::rbd_snap_info_t> = (0..len).map(|_| Default::default()).collect();
            let mut n = cap;
            // SAFETY: `snaps` has room for `n` entries.
            let r = unsafe { sys::rbd_snap_list(self.handle, snaps.as_mut_ptr(), &mut n) };
            if r == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            let count = usize::try_from(check("rbd_snap_list", r)?).unwrap_or(0);
            let out: Vec<(u64, String, u64)> = snaps[..count].iter().map(|s| (s.id, owned(s.name), s.size)).collect();
            // SAFETY: filled by librbd; frees the names.
            unsafe { sys::rbd_snap_list_end(snaps.as_mut_ptr()) };
            break out;
        };
        let mut out = Vec::with_capacity(raw.len());
        for (id, name, size) in raw {
            let mut t: sys::rbd_snap_namespace_type_t = 0;
            // SAFETY: valid image and out pointer.
            check("rbd_snap_get_namespace_type", unsafe { sys::rbd_snap_get_namespace_type(self.handle, id, &mut t) })?;
            let namespace = match t {
                sys::RBD_SNAP_NAMESPACE_TYPE_USER => SnapNamespace::User,
                sys::RBD_SNAP_NAMESPACE_TYPE_TRASH => SnapNamespace::Trash { original_name: self.trash_snap_name(id)? },
                _ => SnapNamespace::Other,
            };
            out.push(SnapInfo { id, name, size, namespace });
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// The name a trashed snapshot had (`rbd_snap_get_trash_namespace`).
    pub fn trash_snap_name(&self, snap_id: u64) -> RbdResult<String> {
        let mut buf = vec![0u8; 512];
        // SAFETY: valid image; `buf` is writable for its length.
        check("rbd_snap_get_trash_namespace", unsafe {
            sys::rbd_snap_get_trash_namespace(self.handle, snap_id, buf.as_mut_ptr().cast(), buf.len())
        })?;
        Ok(from_buf(&buf))
    }

    /// `rbd_snap_is_protected` (user snapshots, by name).
    pub fn snap_is_protected(&self, name: &str) -> RbdResult<bool> {
        let n = cstr("rbd_snap_is_protected", name)?;
        let mut v: c_int = 0;
        // SAFETY: valid image, C string and out pointer.
        check("rbd_snap_is_protected", unsafe { sys::rbd_snap_is_protected(self.handle, n.as_ptr(), &mut v) })?;
        Ok(v != 0)
    }

    /// Reads from the snapshot with this id (`rbd_snap_set_by_id`).
    pub fn set_snap_id(&self, snap_id: u64) -> RbdResult<()> {
        // SAFETY: valid image.
        check("rbd_snap_set_by_id", unsafe { sys::rbd_snap_set_by_id(self.handle, snap_id) })?;
        Ok(())
    }

    /// Reads from the head again (`rbd_snap_set(NULL)`).
    pub fn set_head(&self) -> RbdResult<()> {
        // SAFETY: valid image; NULL selects the head.
        check("rbd_snap_set", unsafe { sys::rbd_snap_set(self.handle, ptr::null()) })?;
        Ok(())
    }

    /// Children of the snapshot set (`rbd_list_children3`), trashed ones
    /// included.
    pub fn children(&self) -> RbdResult<Vec<LinkedImage>> {
        let mut cap = 16usize;
        loop {
            let mut specs: Vec<sys::rbd_linked_image_spec_t> = (0..cap).map(|_| Default::default()).collect();
            let mut n = cap;
            // SAFETY: `specs` has room for `n` entries.
            let r = unsafe { sys::rbd_list_children3(self.handle, specs.as_mut_ptr(), &mut n) };
            if r == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("rbd_list_children3", r)?;
            let out = specs[..n].iter().map(linked).collect();
            // SAFETY: the first `n` entries were filled by librbd.
            unsafe { sys::rbd_linked_image_spec_list_cleanup(specs.as_mut_ptr(), n) };
            return Ok(out);
        }
    }

    fn snap_call(
        &self,
        call: &'static str,
        name: &str,
        f: unsafe extern "C" fn(sys::rbd_image_t, *const c_char) -> c_int,
    ) -> RbdResult<()> {
        let n = cstr(call, name)?;
        // SAFETY: valid image and C string; `f` is one of librbd's
        // `(image, snap name)` calls.
        check(call, unsafe { f(self.handle, n.as_ptr()) })?;
        Ok(())
    }

    /// `rbd_snap_create`.
    pub fn snap_create(&self, name: &str) -> RbdResult<()> {
        self.snap_call("rbd_snap_create", name, sys::rbd_snap_create)
    }

    /// `rbd_snap_protect`.
    pub fn snap_protect(&self, name: &str) -> RbdResult<()> {
        self.snap_call("rbd_snap_protect", name, sys::rbd_snap_protect)
    }

    /// `rbd_snap_unprotect`.
    pub fn snap_unprotect(&self, name: &str) -> RbdResult<()> {
        self.snap_call("rbd_snap_unprotect", name, sys::rbd_snap_unprotect)
    }

    /// `rbd_snap_remove`.
    pub fn snap_remove(&self, name: &str) -> RbdResult<()> {
        self.snap_call("rbd_snap_remove", name, sys::rbd_snap_remove)
    }

    /// `rbd_flatten`.
    pub fn flatten(&self) -> RbdResult<()> {
        // SAFETY: valid image.
        check("rbd_flatten", unsafe { sys::rbd_flatten(self.handle) })?;
        Ok(())
    }

    /// `rbd_resize2` (shrinking allowed).
    pub fn resize(&self, size: u64) -> RbdResult<()> {
        // librbd calls the progress callback without checking it for NULL.
        unsafe extern "C" fn no_progress(_offset: u64, _total: u64, _arg: *mut std::ffi::c_void) -> c_int {
            0
        }
        // SAFETY: valid image; the callback ignores its arguments.
        check("rbd_resize2", unsafe { sys::rbd_resize2(self.handle, size, true, Some(no_progress), ptr::null_mut()) })?;
        Ok(())
    }

    /// `rbd_update_features`.
    pub fn update_features(&self, features: u64, enabled: bool) -> RbdResult<()> {
        // SAFETY: valid image.
        check("rbd_update_features", unsafe { sys::rbd_update_features(self.handle, features, u8::from(enabled)) })?;
        Ok(())
    }

    /// `rbd_copy`: a full copy of the head to `name` in `dest`.
    pub fn copy_to(&self, dest: &IoCtx<'_>, name: &str) -> RbdResult<()> {
        let n = cstr("rbd_copy", name)?;
        // SAFETY: valid image, ioctx and C string.
        check("rbd_copy", unsafe { sys::rbd_copy(self.handle, dest.handle, n.as_ptr()) })?;
        Ok(())
    }

    /// Writes `data` at `offset`, waiting for completion (`rbd_write2`).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> RbdResult<()> {
        let mut done = 0usize;
        while done < data.len() {
            let rest = &data[done..];
            // SAFETY: valid image; `rest` is readable for its length.
            let r = unsafe { sys::rbd_write2(self.handle, offset + done as u64, rest.len(), rest.as_ptr().cast(), 0) };
            if r < 0 {
                return Err(RbdError::new("rbd_write2", r as i64));
            }
            if r == 0 {
                return Err(RbdError { call: "rbd_write2", errno: libc::EIO });
            }
            done += r as usize;
        }
        Ok(())
    }

    /// `rbd_flush`.
    pub fn flush(&self) -> RbdResult<()> {
        // SAFETY: valid image.
        check("rbd_flush", unsafe { sys::rbd_flush(self.handle) })?;
        Ok(())
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        // SAFETY: opened by `rbd_open*`, closed once.
        unsafe { sys::rbd_close(self.handle) };
    }
}

/// Free bytes available to an unprivileged user in the file system holding
/// `path` (`statvfs`).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let p = CString::new(path.as_os_str().to_string_lossy().into_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `statvfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out struct.
    if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_map_to_semantic_kinds() {
        use BackendErrorKind::*;
        let cases = [
            ("rbd_open", libc::ENOENT, NotFound),
            ("rados_ioctx_create", libc::ENOENT, PoolNotFound),
            ("rbd_create4", libc::EEXIST, AlreadyExists),
            ("rbd_remove", libc::EBUSY, Busy),
            ("rbd_remove", libc::ENOTEMPTY, HasSnapshots),
            ("rbd_clone3", libc::EINVAL, InvalidArgument),
            ("rbd_open", libc::EPERM, PermissionDenied),
            ("rbd_open", libc::EACCES, PermissionDenied),
            ("rados_connect", libc::ETIMEDOUT, Unavailable),
            ("rbd_update_features", libc::EOPNOTSUPP, NotSupported),
            ("rbd_write2", libc::EIO, Other),
        ];
        for (call, errno, kind) in cases {
            let e = RbdError { call, errno };
            assert_eq!(e.kind(), kind, "{e}");
        }
        assert!(RbdError::new("rbd_open", -2).is_not_found());
        assert!(RbdError::new("rbd_open", -13).is_permission());
    }

    #[test]
    fn free_space_of_a_directory() {
        assert!(free_bytes(Path::new("/")).unwrap() > 0);
        assert!(free_bytes(Path::new("/nonexistent/dir")).is_err());
    }
}
