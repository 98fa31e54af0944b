//! The HTML report parsed as a browser parses it (html5ever, the HTML standard's
//! algorithm), into a small tree the tests can search.

use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

/// An element: its name, attributes, descendant text and child elements.
#[derive(Debug)]
pub struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// All text inside it, as a browser would show it (unescaped).
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `class` holds `class`.
    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|x| x == class))
    }

    /// The text of the first direct child element named `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.clone())
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a El>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

/// A parsed document.
pub struct Dom {
    root: El,
}

impl Dom {
    pub fn parse(html: &str) -> Dom {
        let dom = html5ever::parse_document(RcDom::default(), Default::default())
            .from_utf8()
            .read_from(&mut html.as_bytes())
            .expect("parses");
        Dom {
            root: convert(&dom.document),
        }
    }

    /// Every element, in document order.
    pub fn elements(&self) -> Vec<&El> {
        let mut out = Vec::new();
        self.root.walk(&mut out);
        out.retain(|e| e.name != "#document");
        out
    }

    pub fn by_name(&self, name: &str) -> Vec<&El> {
        self.elements()
            .into_iter()
            .filter(|e| e.name == name)
            .collect()
    }

    pub fn by_class(&self, class: &str) -> Vec<&El> {
        self.elements()
            .into_iter()
            .filter(|e| e.has_class(class))
            .collect()
    }

    /// The text of `<body>`.
    pub fn text(&self) -> String {
        self.by_name("body")
            .first()
            .map(|b| b.text.clone())
            .unwrap_or_default()
    }
}

fn convert(node: &Handle) -> El {
    let (name, attrs) = match &node.data {
        NodeData::Element { name, attrs, .. } => (
            name.local.to_string(),
            attrs
                .borrow()
                .iter()
                .map(|a| (a.name.local.to_string(), a.value.to_string()))
                .collect(),
        ),
        _ => ("#document".to_string(), Vec::new()),
    };
    let mut el = El {
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
    };
    for child in node.children.borrow().iter() {
        match &child.data {
            NodeData::Text { contents } => el.text.push_str(&contents.borrow()),
            NodeData::Element { .. } => {
                let c = convert(child);
                el.text.push_str(&c.text);
                el.children.push(c);
            }
            _ => {}
        }
    }
    el
}
