//! A deterministic, plausible stand-in for the model's assessment: a handful of surface rules
//! that catch the mistakes learners (and load tests) typically send, and a CEFR guess from
//! sentence length, word length, linking words and accuracy. Same text, same analysis.

use crate::analysis::{Analysis, CefrAssessment, CefrLevel, GrammarError, RecommendedTask};

/// Base form, third person singular, simple past.
const VERBS: &[(&str, &str, &str)] = &[
    ("go", "goes", "went"),
    ("have", "has", "had"),
    ("do", "does", "did"),
    ("eat", "eats", "ate"),
    ("see", "sees", "saw"),
    ("buy", "buys", "bought"),
    ("come", "comes", "came"),
    ("make", "makes", "made"),
    ("take", "takes", "took"),
    ("get", "gets", "got"),
    ("write", "writes", "wrote"),
    ("meet", "meets", "met"),
    ("drink", "drinks", "drank"),
    ("play", "plays", "played"),
    ("walk", "walks", "walked"),
    ("visit", "visits", "visited"),
    ("watch", "watches", "watched"),
    ("like", "likes", "liked"),
    ("want", "wants", "wanted"),
    ("work", "works", "worked"),
    ("study", "studies", "studied"),
    ("live", "lives", "lived"),
];

const PAST_MARKERS: &[&str] = &["yesterday", "ago", "last"];
const THIRD_PERSON: &[&str] = &["he", "she", "it"];
const LINKERS: &[&str] = &[
    "because",
    "although",
    "though",
    "which",
    "while",
    "whereas",
    "however",
    "unless",
    "despite",
    "therefore",
    "since",
    "whether",
    "moreover",
];
const MISSPELLINGS: &[(&str, &str)] = &[
    ("recieve", "receive"),
    ("becuase", "because"),
    ("definately", "definitely"),
    ("untill", "until"),
    ("wich", "which"),
    ("tommorow", "tomorrow"),
    ("freind", "friend"),
    ("beleive", "believe"),
    ("goverment", "government"),
    ("alot", "a lot"),
    ("wierd", "weird"),
    ("seperate", "separate"),
];

/// One word as written plus its bare lowercase form.
struct Word<'a> {
    written: &'a str,
    bare: String,
    /// Index of the sentence it belongs to.
    sentence: usize,
    /// First word of its sentence.
    opens_sentence: bool,
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut sentence = 0;
    let mut opens_sentence = true;
    for written in text.split_whitespace() {
        let bare: String = written.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase();
        if !bare.is_empty() {
            words.push(Word { written, bare, sentence, opens_sentence });
            opens_sentence = false;
        }
        if written.ends_with(['.', '!', '?']) {
            sentence += 1;
            opens_sentence = true;
        }
    }
    words
}

fn error(kind: &str, text: &str, correction: &str, explanation: &str) -> GrammarError {
    GrammarError {
        kind: kind.to_string(),
        text: text.to_string(),
        correction: correction.to_string(),
        explanation: explanation.to_string(),
        extra: Default::default(),
    }
}

fn find_errors(words: &[Word<'_>], text: &str) -> Vec<GrammarError> {
    let past_sentences: Vec<usize> =
        words.iter().filter(|word| PAST_MARKERS.contains(&word.bare.as_str())).map(|word| word.sentence).collect();
    let mut errors = Vec::new();
    for (index, word) in words.iter().enumerate() {
        let previous = index.checked_sub(1).and_then(|previous| words.get(previous));
        let after_third_person = previous.is_some_and(|previous| {
            previous.sentence == word.sentence && THIRD_PERSON.contains(&previous.bare.as_str())
        });
        let verb = VERBS.iter().find(|(base, third, _)| word.bare == *base || word.bare == *third);
        let found = if let Some(&(_, _, past)) = verb.filter(|_| past_sentences.contains(&word.sentence)) {
            Some(error(
                "grammar",
                word.bare.as_str(),
                past,
                &format!("The action is finished and in the past, so use the past simple \"{past}\"."),
            ))
        } else if let Some(&(_, third, _)) = verb.filter(|(base, _, _)| after_third_person && word.bare == *base) {
            let subject = previous.map_or("", |previous| previous.written);
            Some(error(
                "grammar",
                &format!("{subject} {}", word.bare),
                &format!("{subject} {third}"),
                "After he, she or it, a present simple verb takes -s.",
            ))
        } else if word.bare == "don't" && after_third_person {
            let subject = previous.map_or("", |previous| previous.written);
            Some(error(
                "grammar",
                &format!("{subject} don't"),
                &format!("{subject} doesn't"),
                "After he, she or it, use \"doesn't\", not \"don't\".",
            ))
        } else if word.written.trim_matches(|c: char| !c.is_alphanumeric()) == "i" {
            Some(error("spelling", "i", "I", "The pronoun \"I\" is always written with a capital letter."))
        } else if let Some(&(_, right)) = MISSPELLINGS.iter().find(|(wrong, _)| word.bare == *wrong) {
            Some(error("spelling", word.bare.as_str(), right, &format!("This word is spelled \"{right}\".")))
        } else if word.bare == "a" && words.get(index + 1).is_some_and(|next| takes_an(&next.bare)) {
            let next = words.get(index + 1).map_or("", |next| next.bare.as_str());
            Some(error(
                "grammar",
                &format!("{} {next}", word.written),
                &format!("an {next}"),
                "Use \"an\" before a word that starts with a vowel sound.",
            ))
        } else if previous.is_some_and(|previous| previous.bare == word.bare && previous.sentence == word.sentence) {
            Some(error(
                "style",
                &format!("{} {}", word.bare, word.bare),
                word.bare.as_str(),
                "The same word is written twice; remove one.",
            ))
        } else if word.opens_sentence && word.written.chars().next().is_some_and(char::is_lowercase) {
            Some(error(
                "punctuation",
                word.written,
                &capitalise(word.written),
                "Start every sentence with a capital letter.",
            ))
        } else {
            None
        };
        errors.extend(found);
    }
    if let Some(last) = words.last().filter(|_| !text.trim_end().ends_with(['.', '!', '?', '"', ')'])) {
        errors.push(error(
            "punctuation",
            last.written,
            &format!("{}.", last.written),
            "End the sentence with a full stop, a question mark or an exclamation mark.",
        ));
    }
    errors
}

fn takes_an(word: &str) -> bool {
    word.starts_with(['a', 'e', 'i', 'o', 'u'])
        && !["uni", "use", "usu", "eu", "one", "once"].iter().any(|p| word.starts_with(p))
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

pub(crate) fn assess(text: &str) -> Analysis {
    let words = words(text);
    let errors = find_errors(&words, text);
    let word_count = words.len();
    let sentences = words.last().map_or(0, |word| word.sentence + 1).max(1);
    let average_length = word_count as f64 / sentences as f64;
    let long_share = if word_count == 0 {
        0.0
    } else {
        words.iter().filter(|word| word.bare.chars().count() >= 7).count() as f64 / word_count as f64
    };
    let linkers = words.iter().filter(|word| LINKERS.contains(&word.bare.as_str())).count();
    let error_rate = if word_count == 0 { 1.0 } else { errors.len() as f64 / word_count as f64 };

    let mut points: i32 = [average_length >= 8.0, average_length >= 12.0, average_length >= 18.0]
        .into_iter()
        .chain([long_share >= 0.15, long_share >= 0.25, linkers >= 1, linkers >= 3])
        .map(i32::from)
        .sum();
    points -= i32::from(error_rate > 0.1) + i32::from(error_rate > 0.2);
    let ceiling = if word_count < 10 { 1 } else { 5 };
    let level = CefrLevel::ALL[points.clamp(0, ceiling) as usize];
    let confidence = if word_count < 20 {
        0.55
    } else if word_count < 80 {
        0.7
    } else {
        0.8
    };

    let has = |kind: &str| errors.iter().any(|error| error.kind == kind);
    let mut strengths = Vec::new();
    if errors.is_empty() && word_count > 0 {
        strengths.push("Accurate grammar and spelling".to_string());
    }
    if average_length >= 10.0 {
        strengths.push("Longer, connected sentences".to_string());
    }
    if long_share >= 0.15 {
        strengths.push("A good range of vocabulary".to_string());
    }
    if strengths.is_empty() {
        strengths.push("Clear, simple sentences that are easy to follow".to_string());
    }

    let mut areas: Vec<(&str, &str, &str, &str)> = Vec::new();
    if has("grammar") {
        areas.push((
            "Verb tenses and agreement",
            "grammar",
            "Past simple and present simple",
            "Write five sentences about last weekend and five about your daily routine, then check every verb.",
        ));
    }
    if has("spelling") {
        areas.push((
            "Spelling and capital letters",
            "vocabulary",
            "Spelling check",
            "Make a list of the words you misspelled and write each one in a new sentence.",
        ));
    }
    if has("punctuation") {
        areas.push((
            "Punctuation and sentence boundaries",
            "writing",
            "Sentence boundaries",
            "Take a paragraph you wrote and mark where each sentence starts and ends.",
        ));
    }
    if has("style") {
        areas.push((
            "Avoiding repetition",
            "writing",
            "Proofreading",
            "Read your text aloud slowly and remove repeated words.",
        ));
    }
    if average_length < 8.0 || linkers == 0 {
        areas.push((
            "Joining ideas with linking words",
            "writing",
            "Linking words",
            "Rewrite your text joining short sentences with because, although or which.",
        ));
    }
    if areas.is_empty() {
        areas.push((
            "Using more varied structures",
            "writing",
            "Varied sentences",
            "Write a short paragraph that uses a relative clause, a conditional and a passive sentence.",
        ));
    }
    areas.truncate(3);

    let focus = areas.first().map_or("linking your ideas", |area| area.0).to_lowercase();
    let feedback = match errors.len() {
        0 => "Well done: your text is clear and I found no mistakes. To keep improving, try longer sentences that connect your ideas.".to_string(),
        1 => format!(
            "Good work: your meaning is clear and there is only one mistake to fix. Focus on {focus} next."
        ),
        count => format!(
            "Your meaning is clear, and with a few corrections this text will read much better. I found {count} mistakes; the most useful thing to practise is {focus}."
        ),
    };
    let rationale = format!(
        "{word_count} words in {sentences} sentence(s), {average_length:.1} words per sentence on average, with {} mistake(s); {}.",
        errors.len(),
        match level {
            CefrLevel::A1 | CefrLevel::A2 => "simple sentences and everyday words",
            CefrLevel::B1 | CefrLevel::B2 => "connected sentences with some range",
            CefrLevel::C1 | CefrLevel::C2 => "complex, varied sentences and precise vocabulary",
        }
    );

    Analysis {
        errors,
        feedback,
        strengths,
        improvement_areas: areas.iter().map(|(area, ..)| area.to_string()).collect(),
        recommended_tasks: areas
            .iter()
            .map(|(_, kind, title, description)| RecommendedTask {
                kind: kind.to_string(),
                title: title.to_string(),
                description: Some(description.to_string()),
                extra: Default::default(),
            })
            .collect(),
        cefr_assessment: CefrAssessment { level, confidence: Some(confidence), rationale, extra: Default::default() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrections(text: &str) -> Vec<(String, String)> {
        assess(text).errors.into_iter().map(|error| (error.text, error.correction)).collect()
    }

    #[test]
    fn a_present_verb_next_to_yesterday_is_corrected_to_the_past() {
        assert_eq!(corrections("I go to the store yesterday."), [("go".to_string(), "went".to_string())]);
    }

    #[test]
    fn a_lowercase_i_and_a_missing_full_stop_are_both_reported() {
        let found = corrections("Every day i walk to school");
        assert!(found.contains(&("i".into(), "I".into())), "{found:?}");
        assert!(found.contains(&("school".into(), "school.".into())), "{found:?}");
    }

    #[test]
    fn third_person_agreement_and_articles_are_checked() {
        let found = corrections("She go to work and eats a apple.");
        assert!(found.contains(&("She go".into(), "She goes".into())), "{found:?}");
        assert!(found.contains(&("a apple".into(), "an apple".into())), "{found:?}");
    }

    #[test]
    fn correct_long_linked_writing_is_rated_higher_than_short_broken_writing() {
        let simple = assess("i like cat. he like dog");
        let advanced = assess(
            "Although the committee had anticipated considerable opposition, the proposal was approved \
             unanimously, which surprised everyone because several members had previously expressed \
             significant reservations about its environmental consequences.",
        );
        assert!(advanced.errors.is_empty(), "{:?}", advanced.errors);
        assert!(advanced.cefr_assessment.level as u8 > simple.cefr_assessment.level as u8);
        assert!(!simple.recommended_tasks.is_empty() && simple.recommended_tasks.len() <= 3);
    }

    #[test]
    fn empty_or_symbol_only_text_still_gives_a_complete_analysis() {
        for text in ["", "!!! ???", "é"] {
            let analysis = assess(text);
            assert!(!analysis.feedback.is_empty());
            assert!(!analysis.strengths.is_empty());
        }
    }
}
