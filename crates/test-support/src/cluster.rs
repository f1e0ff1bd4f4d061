//! Clusters of nats-servers on loopback, whose nodes are killed,
//! lame-ducked and restarted by PID, watched through their monitoring
//! endpoints.

use std::time::{Duration, Instant};

use crate::server::ClusterConfig;
use crate::{NatsServer, free_port};

/// Three (or more) nats-servers routed into one cluster on loopback,
/// each named `n0`, `n1`, ... (`server_name`), with its monitoring
/// endpoint open and, with [`NatsCluster::start_jetstream`], JetStream on
/// its own store. Each node can be killed, lame-ducked and restarted on
/// the same ports and store; [`NatsCluster::wait_ready`] waits until the
/// running nodes are routed and agree on a JetStream meta leader.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes, in start order (node `i` is named `n{i}`).
    pub nodes: Vec<NatsServer>,
    jetstream: bool,
}

impl NatsCluster {
    /// Starts `n` nodes with full-mesh routes (no JetStream) and waits
    /// until every node has a route to each of the others.
    pub fn start(n: usize) -> NatsCluster {
        NatsCluster::launch(n, false)
    }

    /// Starts `n` nodes with full-mesh routes and JetStream (each node on
    /// its own store directory), and waits until the cluster is formed and
    /// has a JetStream meta leader ([`NatsCluster::wait_ready`]), so an R3
    /// stream can be created at once.
    pub fn start_jetstream(n: usize) -> NatsCluster {
        NatsCluster::launch(n, true)
    }

    fn launch(n: usize, jetstream: bool) -> NatsCluster {
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let routes = route_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| *p)
                    .collect();
                let mut builder = NatsServer::builder().monitoring();
                if jetstream {
                    builder = builder.jetstream();
                }
                builder.cluster =
                    Some(ClusterConfig { name: format!("n{i}"), port: route_ports[i], routes });
                builder.start()
            })
            .collect();
        let cluster = NatsCluster { nodes, jetstream };
        cluster.wait_ready();
        cluster
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Every node's client URL joined by commas (the command line's
    /// `--server` form).
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The index of the node listening for clients on `port` (the port a
    /// client's server INFO reports).
    pub fn node_on_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// The index of the node named `name` (`n0`, `n1`, ...).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == Some(name))
    }

    /// The nodes whose process answers its monitoring endpoint.
    fn answering(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some() && self.nodes[i].monitor("/varz").is_some())
            .collect()
    }

    /// The JetStream meta leader's node index, when the running nodes that
    /// answer agree on one.
    pub fn meta_leader(&self) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let jsz = self.nodes[i].monitor("/jsz")?;
            let name = jsz["meta_cluster"]["leader"].as_str().filter(|l| !l.is_empty())?;
            let index = self.node_named(name)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader
    }

    /// `stream`'s details (account `$G`) as node `i`'s `/jsz` reports
    /// them: `{"name", "state": {"messages", "bytes", ...}, "cluster":
    /// {"leader", "replicas": [...]}, "consumer_detail": [...]}`; `None`
    /// when the node does not answer or has no such stream.
    pub fn stream_detail(&self, i: usize, stream: &str) -> Option<serde_json::Value> {
        let jsz = self.nodes[i].monitor("/jsz?accounts=true&streams=true&consumers=true")?;
        let accounts = jsz["account_details"].as_array()?;
        accounts
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten()
            .find(|s| s["name"] == stream)
            .cloned()
    }

    /// The node index of `stream`'s leader, when every running node that
    /// answers agrees on one and it is running; `None` while it has none
    /// (an election after its leader was killed) or the nodes disagree.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let Some(detail) = self.stream_detail(i, stream) else { continue };
            let index = self.node_named(detail["cluster"]["leader"].as_str()?)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader.filter(|&l| self.nodes[l].child.is_some())
    }

    /// The node index of the leader of `stream`'s consumer `consumer`, as
    /// the running nodes report it (`None` while it has none or they
    /// disagree).
    pub fn consumer_leader(&self, stream: &str, consumer: &str) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let Some(detail) = self.stream_detail(i, stream) else { continue };
            let consumers = detail["consumer_detail"].as_array().cloned().unwrap_or_default();
            let Some(c) = consumers.iter().find(|c| c["name"] == consumer) else { continue };
            let index = self.node_named(c["cluster"]["leader"].as_str()?)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader.filter(|&l| self.nodes[l].child.is_some())
    }

    /// Waits (up to 30 s) until `stream` has a running leader that sees
    /// every other running node's replica as current, and returns the
    /// leader's index. Publishes to the stream in the meantime can get no
    /// answer at all (no responders while no node leads it).
    pub fn wait_stream_ready(&self, stream: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(leader) = self.stream_leader(stream) {
                let running: Vec<&str> = (0..self.nodes.len())
                    .filter(|&i| i != leader && self.nodes[i].child.is_some())
                    .filter_map(|i| self.nodes[i].name())
                    .collect();
                let current = self.stream_detail(leader, stream).is_some_and(|d| {
                    let replicas = d["cluster"]["replicas"].as_array().cloned().unwrap_or_default();
                    running.iter().all(|name| {
                        replicas.iter().any(|r| r["name"] == *name && r["current"] == true)
                    })
                });
                if current {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "stream {stream} has no ready leader in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 30 s, then panics with the logs) until every running
    /// node has routes to every other running node and, with JetStream,
    /// they agree on a meta leader that sees every other running node as
    /// current. Call it after starting or restarting nodes.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.is_ready() {
            assert!(
                Instant::now() < deadline,
                "cluster not ready in 30 s:\n{}",
                self.nodes
                    .iter()
                    .map(|n| format!("--- {:?}\n{}", n.name(), n.log()))
                    .collect::<String>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_ready(&self) -> bool {
        let running: Vec<usize> =
            (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some()).collect();
        let names: Vec<&str> = running.iter().filter_map(|&i| self.nodes[i].name()).collect();
        for &i in &running {
            let Some(routez) = self.nodes[i].monitor("/routez") else { return false };
            let routes = routez["routes"].as_array().cloned().unwrap_or_default();
            let routed = names
                .iter()
                .filter(|&&name| Some(name) != self.nodes[i].name())
                .all(|name| routes.iter().any(|r| r["remote_name"].as_str() == Some(name)));
            if !routed {
                return false;
            }
        }
        if !self.jetstream {
            return true;
        }
        let Some(leader) = self.meta_leader() else { return false };
        let Some(jsz) = self.nodes[leader].monitor("/jsz") else { return false };
        let replicas = jsz["meta_cluster"]["replicas"].as_array().cloned().unwrap_or_default();
        names.iter().filter(|&&name| Some(name) != self.nodes[leader].name()).all(|name| {
            replicas.iter().any(|r| r["name"].as_str() == Some(name) && r["current"] == true)
        })
    }
}
