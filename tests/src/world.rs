//! Provisioning through the admin API: a server with its first admin and a district/street
//! ([`Env`]), and per scenario a fresh community with two grids, workers (one of them on
//! both grids) and a supervisor of the community ([`Site`]). Scenarios sharing one server
//! never see each other's records: every scenario has its own grids and users.

use std::cell::RefCell;

use anyhow::Context;
use grid_server::db::{Backend, DbPool};

use crate::admin::{Admin, NewUserSpec};
use crate::server::{bootstrap_admin, LiveServer};

/// The password of every user the harness makes.
pub const PASSWORD: &str = "网格 correct horse 2026";
const ADMIN: &str = "e2e_admin";

/// A running server with an admin and the top of an area tree.
pub struct Env {
    /// In a `RefCell`: a fault injector restarts it while phones hold `&Env`.
    pub server: RefCell<LiveServer>,
    pub admin: Admin,
    /// A pool on the server's database that outlives restarts (oracle, checks).
    pub side: DbPool,
    pub base_url: String,
    pub street: String,
}

impl Env {
    /// A fresh server on `backend` (`None`: PostgreSQL not configured).
    pub fn start(backend: Backend) -> anyhow::Result<Option<Env>> {
        let Some(server) = LiveServer::start_test(backend)? else {
            return Ok(None);
        };
        Self::on(server).map(Some)
    }

    /// An `Env` on a running server whose database has no admin yet.
    pub fn on(server: LiveServer) -> anyhow::Result<Env> {
        let side = server.side_pool()?;
        bootstrap_admin(&side, ADMIN, PASSWORD).context("first admin")?;
        let admin = Admin::login(&server.base_url, ADMIN, PASSWORD)?;
        let district = admin.create_area("鼓楼区", "district", None)?;
        let street = admin.create_area("湖南路街道", "street", Some(&district))?;
        Ok(Env {
            base_url: server.base_url.clone(),
            server: RefCell::new(server),
            admin,
            side,
            street,
        })
    }

    pub fn backend(&self) -> Backend {
        self.server.borrow().backend()
    }

    /// Restart the server (same port and database).
    pub fn restart(&self) -> anyhow::Result<()> {
        self.server.borrow_mut().restart()
    }

    /// A new community with two grids and its users; `tag` makes the usernames unique.
    pub fn site(&self, tag: &str) -> anyhow::Result<Site> {
        let a = &self.admin;
        let community = a.create_area(&format!("社区{tag}"), "community", Some(&self.street))?;
        let g1 = a.create_area(&format!("第一网格{tag}"), "grid", Some(&community))?;
        let g2 = a.create_area(&format!("第二网格{tag}"), "grid", Some(&community))?;
        let mut site = Site {
            community: community.clone(),
            g1: g1.clone(),
            g2: g2.clone(),
            users: Vec::new(),
        };
        let specs: [(&str, &str, Vec<String>); 4] = [
            ("w1", "worker", vec![g1.clone()]),
            ("w2", "worker", vec![g1.clone(), g2.clone()]),
            ("w3", "worker", vec![g2.clone()]),
            ("sup", "supervisor", vec![]),
        ];
        for (key, role, grids) in specs {
            let username = format!("{key}_{tag}");
            let id = a.create_user(&NewUserSpec {
                username: &username,
                password: PASSWORD,
                display_name: key,
                role,
                grid_ids: &grids,
                area_id: (role == "supervisor").then_some(community.as_str()),
                department: None,
            })?;
            site.users.push(SiteUser {
                key: key.to_owned(),
                username,
                id,
                role: role.to_owned(),
                grids: if role == "supervisor" {
                    vec![g1.clone(), g2.clone()]
                } else {
                    grids
                },
            });
        }
        Ok(site)
    }
}

/// A user of a [`Site`].
#[derive(Clone, Debug)]
pub struct SiteUser {
    /// `w1`, `w2`, `w3` or `sup`.
    pub key: String,
    pub username: String,
    pub id: String,
    pub role: String,
    /// The grids the user holds now (the supervisor: both, by area).
    pub grids: Vec<String>,
}

/// A community with two grids: `w1` on g1, `w2` on g1 and g2, `w3` on g2, `sup` supervising
/// the community.
#[derive(Clone, Debug)]
pub struct Site {
    pub community: String,
    pub g1: String,
    pub g2: String,
    pub users: Vec<SiteUser>,
}

impl Site {
    pub fn user(&self, key: &str) -> Option<&SiteUser> {
        self.users.iter().find(|u| u.key == key)
    }

    pub fn user_mut(&mut self, key: &str) -> Option<&mut SiteUser> {
        self.users.iter_mut().find(|u| u.key == key)
    }

    pub fn grids(&self) -> Vec<String> {
        vec![self.g1.clone(), self.g2.clone()]
    }
}
